"""Cleaning of extraction artifacts, checked on excerpts of the seed files (tests/data/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.cleaning import fold_for_match, normalize_chars, remove_note_markers, strip_markup
from ingest.pipeline import parse_file
from ingest.records import ParsedDocument

from .conftest import DATA


def _parse(tmp_path: Path, name: str, settings) -> ParsedDocument:
    target = tmp_path / name
    shutil.copy(DATA / name, target)
    return parse_file(target, None, settings)


def _chunk_with(parsed: ParsedDocument, needle: str):
    found = [c for c in parsed.chunks if needle in c.text]
    assert found, f"no chunk contains {needle!r}"
    return found[0]


def test_mid_sentence_break_and_blank_line_are_joined(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed000_introduction.txt", ingest_settings)
    # Source: "... absolute poverty in 2020. The\n\nvictory solved ..." and a sentence cut by a
    # blank line before "(UN) 2030 Agenda".
    assert "in 2020. The victory solved the historical problem" in parsed.text
    assert "under the United Nations (UN) 2030 Agenda" in parsed.text


def test_page_number_leaves_text_and_becomes_page(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed000_introduction.txt", ingest_settings)
    # "members of society." is followed by the printed page number "2" at the page foot.
    assert "members of society. 2" not in parsed.text
    assert "\n2\n" not in parsed.text
    before = _chunk_with(parsed, "members of society.")
    after = _chunk_with(parsed, "China creatively expanded")
    assert before.page_start <= 2 <= before.page_end
    assert after.page_end == 3  # "China creatively expanded" opens page 3
    assert parsed.chunks[0].page_start == 1
    assert all(c.page_start is not None for c in parsed.chunks)
    assert parsed.document.pages == 4


def test_footnote_is_its_own_block_not_glued_into_a_sentence(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed000_introduction.txt", ingest_settings)
    # In the source the note text sits between "absolute" and "poverty on such a large scale".
    assert "China's eradication of absolute poverty on such a large scale" in parsed.text
    notes = [c for c in parsed.chunks if c.kind == "footnote"]
    assert any("Robert Lawrence Kuhn" in c.text for c in notes)
    for chunk in parsed.chunks:
        if chunk.kind != "footnote":
            assert "Robert Lawrence Kuhn" not in chunk.text
            assert "Chongqing Publishing House" not in chunk.text
    # The note marker after the quotation is gone, the sentence stays whole.
    assert 'greatest world stories of the 21st century."' in parsed.text
    assert 'century." 1' not in parsed.text


def test_five_batches_glossary_entry_is_one_chunk(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed000_glossary.txt", ingest_settings)
    entries = [c for c in parsed.chunks if c.title == "Five Batches"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry.kind == "glossary"
    folded = fold_for_match(entry.text)
    for measure in (
        "expanding production to increase employment",
        "through relocation",
        "through ecological compensation",
        "through education",
        "meeting basic needs",
    ):
        assert measure in folded
    assert "Glossaries" in entry.section
    terms = [c.title for c in parsed.chunks if c.kind == "glossary"]
    assert terms[:4] == [
        "Bellwether Effect", "East-West Pairing-up Program", "Six Precise Measures", "Five Batches"
    ]


def test_hyphenated_compound_keeps_its_hyphen(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed000_glossary.txt", ingest_settings)
    # "poverty-\n\nstricken" in the source.
    assert "poverty-stricken people and areas" in parsed.text
    assert "medium-sized population" in parsed.text


def test_inline_bracket_note_is_separated(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed001_bracket_note.txt", ingest_settings)
    body = _chunk_with(parsed, "Two Assurances and Three Guarantees have been realized")
    assert body.kind == "body"
    assert "This refers to" not in body.text
    note = _chunk_with(parsed, "This refers to assurances of adequate food and clothing")
    assert note.kind == "footnote"
    assert note.section == body.section


def test_circled_notes_are_separated_and_split_word_rejoined(tmp_path, ingest_settings):
    parsed = _parse(tmp_path, "seed003_circled_notes.txt", ingest_settings)
    # "... the overall em-" / notes ① ② / "ployment rate reached 90%.^①"
    assert "the overall employment rate reached 90%." in parsed.text
    assert "^" not in parsed.text and "\u2460" not in parsed.text
    notes = [c for c in parsed.chunks if c.kind == "footnote"]
    assert any("Series Press Conference" in c.text for c in notes)
    assert not any(
        "Series Press Conference" in c.text for c in parsed.chunks if c.kind == "body"
    )


@pytest.mark.parametrize(
    "raw, clean",
    [
        (
            "\u201cPro-poor\u201d market\uff1athe \u2018last mile\u2019",
            "\"Pro-poor\" market: the 'last mile'",
        ),
        ("a\u00a0b", "a b"),
    ],
)
def test_normalize_chars(raw, clean):
    assert normalize_chars(raw).replace("  ", " ") == clean


def test_markup_and_markers():
    assert strip_markup("**STUDIES** and *Global Times*") == "STUDIES and Global Times"
    assert strip_markup("[CGTN](https://news.cgtn.com/x) <https://a.b/c>") == "CGTN https://a.b/c"
    assert strip_markup("since 1998.<sup>3</sup> It") == "since 1998. It"
    assert remove_note_markers("work close to home.1") == "work close to home."
    assert remove_note_markers('century." 1') == 'century."'
    assert remove_note_markers("in 2019, 94.8 percent and 1.1 million") == (
        "in 2019, 94.8 percent and 1.1 million"
    )
