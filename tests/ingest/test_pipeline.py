"""PDF loading with pages, metadata defaults, manifest, source listing, sentences, chunking."""

from __future__ import annotations

import hashlib

import pytest

from ingest.chunker import chunk_blocks
from ingest.config import IngestSettings
from ingest.manifest import load_manifest
from ingest.pipeline import list_sources, parse_file
from ingest.records import Block, DocMeta, IngestError
from ingest.sentences import split_sentences

from .conftest import make_pdf

PAGES = [
    "Chapter One: Origins\n\nThe first page tells how the program began in 1986. "
    "It set a poverty line of 206 yuan.",
    "The second page describes relocation. About 9.6 million people moved to new homes. "
    "Schools and clinics were built.",
    "The third page covers monitoring. Households at risk were checked every month.",
]


def test_multi_page_pdf_keeps_pdf_page_numbers(tmp_path):
    path = make_pdf(tmp_path / "report.pdf", PAGES, title="A Test Report")
    parsed = parse_file(path, None, IngestSettings(chunk_words=12, overlap_sentences=0))
    doc = parsed.document
    assert doc.pages == 3
    assert doc.title == "A Test Report"
    assert doc.doc_id == "report"
    assert doc.kind == "document" and doc.language == "en" and doc.publisher == ""
    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()

    def page_of(needle: str) -> int | None:
        chunk = next(c for c in parsed.chunks if needle in c.text)
        return chunk.page_start

    assert page_of("poverty line of 206 yuan") == 1
    assert page_of("9.6 million people") == 2
    assert page_of("checked every month") == 3
    # The printed page numbers at the page feet are not text.
    assert "yuan. 1" not in parsed.text and "\n2\n" not in parsed.text
    for c in parsed.chunks:
        assert parsed.text[c.char_start : c.char_end] == c.text
    assert any(c.section.startswith("Chapter One") for c in parsed.chunks)


def test_sentence_spanning_a_pdf_page_break_is_joined(tmp_path):
    pages = ["The campaign reached every village and", "household before the end of 2020."]
    path = make_pdf(tmp_path / "split.pdf", pages)
    parsed = parse_file(path, None, IngestSettings())
    chunk = next(c for c in parsed.chunks if "every village and household" in c.text)
    assert (chunk.page_start, chunk.page_end) == (1, 2)


def test_manifest_metadata_wins(tmp_path):
    path = tmp_path / "note.md"
    path.write_text("# Heading One\n\nSome text here. More text.\n", encoding="utf-8")
    meta = DocMeta(source="note.md", doc_id="n1", title="Given", published="2021-04")
    parsed = parse_file(path, meta, IngestSettings())
    assert parsed.document.doc_id == "n1" and parsed.document.title == "Given"
    assert parsed.document.published == "2021-04" and parsed.document.year == 2021
    assert parsed.chunks[0].section == "Heading One"
    assert parsed.chunks[0].text == "Some text here. More text."


def test_title_defaults_to_first_heading(tmp_path):
    path = tmp_path / "My File.md"
    path.write_text("# Rural Revival\n\nText.\n", encoding="utf-8")
    parsed = parse_file(path, None, IngestSettings())
    assert parsed.document.title == "Rural Revival"
    assert parsed.document.doc_id == "my-file"
    assert parsed.document.pages == 0


def test_load_manifest(tmp_path):
    assert load_manifest(tmp_path) == {}
    (tmp_path / "manifest.toml").write_text(
        '["a.txt"]\ndoc_id = "a"\ntitle = "A"\npublished = "2021"\n', encoding="utf-8"
    )
    meta = load_manifest(tmp_path)["a.txt"]
    assert meta == DocMeta(source="a.txt", doc_id="a", title="A", published="2021")
    (tmp_path / "manifest.toml").write_text('["a.txt"\ndoc_id = ', encoding="utf-8")
    with pytest.raises(IngestError) as info:
        load_manifest(tmp_path)
    assert info.value.source == "manifest.toml"


def test_list_sources(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.txt", "a.pdf", "manifest.toml", ".hidden.txt", "sub/c.md"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = list_sources([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.pdf", "b.txt", "sub/c.md"]
    assert list_sources([tmp_path / "b.txt"]) == [tmp_path / "b.txt"]


def test_sentence_splitter_respects_abbreviations_and_decimals():
    text = (
        "On Oct. 16, 2015, Xi spoke in Beijing. The No. 1 Central Document followed. "
        "The U.S. economy grew. China has 1.4 billion people! Is it done? Yes."
    )
    sentences = [text[a:b] for a, b in split_sentences(text)]
    assert sentences == [
        "On Oct. 16, 2015, Xi spoke in Beijing.",
        "The No. 1 Central Document followed.",
        "The U.S. economy grew.",
        "China has 1.4 billion people!",
        "Is it done?",
        "Yes.",
    ]


def _block(text: str) -> Block:
    return Block(text, "body", ("S",), None, None, 0, len(text))


def test_chunker_limits_overlap_and_long_sentences():
    text = " ".join(f"Sentence number {i} has exactly six words." for i in range(10))
    chunks = chunk_blocks("d", "d.txt", text, [_block(text)], chunk_words=15, overlap_sentences=1)
    assert all(len(c.text.split()) <= 15 for c in chunks)
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text
        assert c.text.endswith(".")
    # One sentence of overlap: each chunk starts with the previous chunk's last sentence.
    assert chunks[1].text.startswith(chunks[0].text.split(". ")[-1].rstrip(".") )
    long = "word " * 50 + "end."
    pieces = chunk_blocks("d", "d.txt", long, [_block(long)], chunk_words=20, overlap_sentences=1)
    assert [len(p.text.split()) for p in pieces] == [20, 20, 11]
