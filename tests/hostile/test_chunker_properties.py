"""Property tests of the cleaner, the sentence splitter and the chunker on arbitrary text.

Invariants (DESIGN.md "Citations are the product"): every chunk's offsets slice the cleaned
text to exactly its text; no chunk is empty or over the word limit; no chunk boundary falls
inside a sentence as `split_sentences` sees it, except inside a single sentence longer than
the limit, which the chunker cuts at word boundaries (its pieces are packed like sentences,
and the overlap may start at a piece); no sentence of a block is lost. Bad input is refused
with an IngestError naming the file, never another exception.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.chunker import chunk_blocks, count_words
from ingest.cleaning import (
    collapse_spaces,
    fold_for_match,
    normalize_chars,
    remove_note_markers,
    strip_markup,
)
from ingest.config import IngestSettings
from ingest.loaders import decode_text
from ingest.pipeline import parse_file
from ingest.records import Block, Chunk, IngestError
from ingest.sentences import split_sentences
from ingest.structure import SourceLine, structure_lines
from tests.hostile.strategies import documents, examples, paragraph, unicode_text

SMALL = IngestSettings(chunk_words=25)  # small chunks: many boundaries per document
DEFAULT = IngestSettings()


def check_chunks(text: str, blocks: list[Block], chunks: list[Chunk] | tuple[Chunk, ...],
                 limit: int) -> None:
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text
        assert c.text.strip() and c.text == c.text.strip()
        assert count_words(c.text) <= limit
    for block in blocks:
        inside = [c for c in chunks if block.char_start <= c.char_start < block.char_end]
        sentences = split_sentences(text, block.char_start, block.char_end)
        for c in inside:
            assert c.char_end <= block.char_end, "a chunk crosses a block"
        for a, b in sentences:
            long = count_words(text[a:b]) > limit
            covered = any(c.char_start <= a and b <= c.char_end for c in inside)
            assert covered or long, f"sentence lost: {text[a:b]!r}"
            for c in inside:
                for edge in (c.char_start, c.char_end):
                    if a < edge < b:  # a boundary inside this sentence
                        assert long, f"sentence split: {text[a:b]!r} at {edge - a}"
                        assert text[edge - 1].isspace() or text[edge].isspace(), "word cut"
            if long:  # cut at words into pieces that cover it
                pieces = [c for c in inside if a <= c.char_start < b]
                assert pieces and max(c.char_end for c in pieces) >= b


@examples(200)
@given(st.lists(st.one_of(paragraph, unicode_text), min_size=1, max_size=6),
       st.integers(min_value=3, max_value=60), st.integers(min_value=0, max_value=3))
def test_chunk_blocks_keeps_offsets_sentences_and_the_word_limit(
    paragraphs: list[str], limit: int, overlap: int
) -> None:
    text = "\n\n".join(paragraphs)
    blocks = []
    for m in re.finditer(r"\S(?:.*\S)?", text):  # each non-blank line a block
        blocks.append(Block(m.group(0), "body", ("S",), None, None, m.start(), m.end()))
    chunks = chunk_blocks("doc", "doc.txt", text, blocks, limit, overlap)
    check_chunks(text, blocks, chunks, limit)
    # Overlap repeats at most `overlap` units; chunks of one block move strictly forward.
    for block in blocks:
        inside = [c for c in chunks if block.char_start <= c.char_start < block.char_end]
        assert all(x.char_start < y.char_start and x.char_end < y.char_end
                   for x, y in zip(inside, inside[1:], strict=False))


def test_a_sentence_over_the_limit_is_cut_at_words() -> None:
    text = " ".join(["poverty"] * 30) + ". Done."
    block = Block(text, "body", (), None, None, 0, len(text))
    chunks = chunk_blocks("doc", "doc.txt", text, [block], 25, 1)
    assert [count_words(c.text) for c in chunks] == [25, 6]  # 25 words, then 5 + "Done."
    assert chunks[1].text == "poverty " * 4 + "poverty. Done."
    check_chunks(text, [block], chunks, 25)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-docs")


@examples(120)
@given(documents, st.sampled_from([".txt", ".md"]), st.sampled_from([SMALL, DEFAULT]))
def test_parse_file_on_any_text_keeps_the_chunk_invariants(
    workdir: Path, text: str, ext: str, settings: IngestSettings
) -> None:
    path = workdir / f"doc{ext}"
    path.write_bytes(text.encode("utf-8"))
    try:
        parsed = parse_file(path, None, settings)
    except IngestError as exc:  # empty or binary-looking: refused, naming the file
        assert exc.source == path.name and exc.reason
        return
    # The same cleaning and structure the pipeline ran, to see its blocks.
    clean = normalize_chars(decode_text(path.name, path.read_bytes())[0])
    markdown = ext == ".md" or bool(re.search(r"(?m)^#{1,3} \S", clean))
    structured = structure_lines([SourceLine(line.rstrip()) for line in clean.split("\n")],
                                 is_pdf=False, markdown=markdown)
    assert structured.text == parsed.text
    check_chunks(parsed.text, structured.blocks, parsed.chunks, settings.chunk_words)
    assert len({c.chunk_id for c in parsed.chunks}) == len(parsed.chunks)


@examples(30)
@given(st.binary(max_size=3000), st.sampled_from([".txt", ".md", ".pdf", ".xyz", ""]))
def test_parse_file_on_any_bytes_raises_only_ingest_errors(
    workdir: Path, raw: bytes, ext: str
) -> None:
    path = workdir / f"bytes{ext}"
    path.write_bytes(raw)
    try:
        parsed = parse_file(path, None, DEFAULT)
    except IngestError as exc:
        assert exc.source == path.name and "\n" not in str(exc)
        return
    assert all(parsed.text[c.char_start : c.char_end] == c.text for c in parsed.chunks)


@examples(300)
@given(st.one_of(unicode_text, paragraph, documents))
def test_cleaning_functions_are_total_and_keep_their_promises(text: str) -> None:
    normal = normalize_chars(text)
    assert normalize_chars(normal) == normal  # idempotent
    assert not set("\u2018\u2019\u201c\u201d\u00a0\u200b\ufeff\u00ad\t\r") & set(normal)
    folded = fold_for_match(text)
    assert set(folded) <= set(string.ascii_lowercase + string.digits + " ")
    assert fold_for_match(folded) == folded and "  " not in folded
    for line in text.split("\n"):
        collapsed = collapse_spaces(line)
        assert "  " not in collapsed and collapsed == collapsed.strip()
    assert isinstance(strip_markup(text), str)
    assert isinstance(remove_note_markers(text), str)


@examples(300)
@given(st.one_of(paragraph, documents), st.data())
def test_split_sentences_spans_are_ordered_trimmed_and_inside_the_range(
    text: str, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    spans = split_sentences(text, start, end)
    for a, b in spans:
        assert start <= a < b <= end
        assert not text[a].isspace() and not text[b - 1].isspace()
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    # Nothing but whitespace is left out.
    gaps = [(start, spans[0][0])] if spans else [(start, end)]
    gaps += [(b1, a2) for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False)]
    gaps += [(spans[-1][1], end)] if spans else []
    assert all(not text[a:b].strip() for a, b in gaps)


_PLAIN = st.lists(st.sampled_from(
    "poverty county households relocated workshop income rose 2019 9.6 million cadres 中文 café "
    "villages (new) \"quoted\" schools".split()), min_size=1, max_size=15)


@examples(100)
@given(st.lists(st.builds(lambda words, end: " ".join(words).capitalize() + end, _PLAIN,
                          st.sampled_from([".", "!", "?", '."', ".)", "?!"])),
                min_size=1, max_size=12))
def test_split_sentences_finds_the_sentences_it_was_given(sentences: list[str]) -> None:
    """Sentences of plain words (no abbreviations, no initials) that end with terminal
    punctuation and start with a capital: the splitter returns exactly them."""
    text = " ".join(sentences)
    assert [text[a:b] for a, b in split_sentences(text)] == sentences
