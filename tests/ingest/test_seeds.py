"""The five full seed files: offsets invariant, chunk sizes, pages, structure."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

from ingest.config import IngestSettings
from ingest.manifest import load_manifest
from ingest.pipeline import parse_file
from ingest.records import ParsedDocument

from .conftest import CORPUS, ROOT

SEEDS = sorted(p.name for p in CORPUS.glob("0*.txt"))


@cache
def parsed(name: str) -> ParsedDocument:
    manifest = load_manifest(CORPUS)
    return parse_file(CORPUS / name, manifest.get(name), IngestSettings())


def test_all_five_seeds_present():
    assert len(SEEDS) == 5


@pytest.mark.parametrize("name", SEEDS)
def test_offsets_invariant_and_sizes(name):
    doc = parsed(name)
    limit = IngestSettings().chunk_words
    assert doc.chunks
    ids = set()
    for c in doc.chunks:
        assert doc.text[c.char_start : c.char_end] == c.text
        assert c.text.strip() == c.text and c.text
        assert len(c.text.split()) <= limit
        assert c.source == name and c.doc_id == doc.document.doc_id
        assert c.kind in ("body", "glossary", "footnote", "case", "box")
        ids.add(c.chunk_id)
    assert len(ids) == len(doc.chunks)


@pytest.mark.parametrize("name", SEEDS)
def test_no_extraction_debris_in_text(name):
    text = parsed(name).text
    assert "<sup>" not in text and "**" not in text
    assert "\u201c" not in text and "\uff1a" not in text and "\u00a0" not in text
    assert not re.search(r"(?m)^\s*\d{1,3}\s*$", text), "a standalone page number survived"
    assert "……" not in text and "....." not in text, "a table of contents survived"


def test_printed_pages_on_every_chunk_of_000():
    doc = parsed("000_6d8015376196ca48.txt")
    assert all(c.page_start is not None for c in doc.chunks)
    pages = [c.page_start for c in doc.chunks if c.kind != "footnote"]
    assert pages == sorted(pages), "pages go forward with the text"
    # The TOC says "Glossaries ... 85".
    glossary = [c for c in doc.chunks if c.kind == "glossary"]
    assert glossary and all(c.page_start >= 85 for c in glossary)
    assert doc.document.pages >= 85


def test_sections_of_000_and_001():
    d0 = parsed("000_6d8015376196ca48.txt")
    sections = {c.section for c in d0.chunks}
    assert any(s.endswith("2.1 Who Are the Poor? Precise Identification") for s in sections)
    d1 = parsed("001_699e285056daa501.txt")
    sections = {c.section.split(" > ")[0] for c in d1.chunks}
    assert "III. The Strategy of Targeted Poverty Alleviation" in sections
    assert any(c.kind == "box" for c in d1.chunks)


def test_002_case_studies_and_endnotes_get_their_sections():
    doc = parsed("002_f990969d0c8cbb49.txt")
    cases = {c.section for c in doc.chunks if c.kind == "case"}
    # Wangjia sits under Part IV in the file; the table of contents puts it in Part V.
    assert "Part V: Case Studies > Wangjia Resettlement Area" in cases
    assert "Part V: Case Studies > Danyang Village" in cases
    notes = [c for c in doc.chunks if c.kind == "footnote"]
    assert len(notes) > 60 and all(c.section == "Endnotes" for c in notes[:-1] if c.title)
    # Offsets stay in file order even though sections are not.
    starts = [c.char_start for c in doc.chunks]
    assert starts == sorted(starts)


def test_case_journal_entries_of_000():
    doc = parsed("000_6d8015376196ca48.txt")
    cases = [c for c in doc.chunks if c.kind == "case"]
    assert cases and all("One Grassroots Case" in c.section for c in cases)
    visits = [c for c in cases if c.text.startswith("Record of Visit")]
    assert len(visits) >= 10


def test_gold_evidence_quotes_survive_cleaning():
    """Nearly every gold quote (normalised) is a substring of its cleaned, normalised document."""

    def norm(text: str) -> str:
        return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()

    gold = ROOT / "evals" / "gold" / "dev.jsonl"
    if not gold.is_file():
        pytest.skip("no gold set")
    texts: dict[str, str] = {}
    total = found = 0
    for line in gold.read_text(encoding="utf-8").splitlines():
        for ev in json.loads(line).get("evidence", []):
            if ev["doc"] not in texts:
                texts[ev["doc"]] = norm(parsed(ev["doc"]).text)
            total += 1
            found += norm(ev["quote"]) in texts[ev["doc"]]
    assert total and found / total >= 0.95
