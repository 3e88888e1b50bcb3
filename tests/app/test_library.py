"""Uploads checked by content, sanitised names, deletion from both indexes, the glossary."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.library import (
    ReadWriteLock,
    UploadError,
    add_uploads,
    check_upload,
    delete_document,
    glossary_entries,
    safe_name,
    sniff,
)
from kb.retriever import retrieve
from tests.ingest.conftest import make_pdf


@pytest.mark.parametrize("given, expected", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.PDF", "evil.pdf"),
    ("/abs/path/report.md", "report.md"),
    (".hidden.txt", "hidden.txt"),
    ("rapport d'activité (2021).pdf", "rapport d_activite _2021.pdf"),
    ("a" * 300 + ".txt", "a" * 116 + ".txt"),
    ("..", "upload"),
])
def test_safe_name_never_leaves_the_corpus(given: str, expected: str) -> None:
    assert safe_name(given) == expected
    assert "/" not in safe_name(given) and "\\" not in safe_name(given)


def test_sniff_reads_content_not_names() -> None:
    assert sniff(b"%PDF-1.7\n...") == "pdf"
    assert sniff(b"PK\x03\x04rest") .startswith("a ZIP archive")
    assert sniff(b"\x7fELF\x02") == "a program"
    assert sniff("Plain text, café, 中文".encode()) == "text"
    assert sniff(b"abc\x00def") == "binary data"


def test_check_upload_reasons(tmp_path: Path) -> None:
    def check(name: str, data: bytes, max_mb: float = 1.0) -> str:
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        return check_upload(path, name, max_mb)

    assert check("notes.md", b"# Notes\n\nText.") == "notes.md"
    for name, data, reason in [
        ("fake.pdf", b"just text", "not a PDF"),
        ("image.txt", b"\x89PNG\r\n\x1a\nxxxx", "not a text file"),
        ("paper.txt", b"%PDF-1.4 ...", "rename a PDF to .pdf"),
        ("tool.exe", b"MZ....", "unsupported file type '.exe'"),
        ("noext", b"text", "unsupported file type '(none)'"),
        ("empty.txt", b"", "empty file"),
        ("big.txt", b"x" * 2048, "file too large"),
    ]:
        with pytest.raises(UploadError) as info:
            check(name, data, max_mb=0.001 if name == "big.txt" else 1.0)
        assert reason in info.value.reason, (name, info.value.reason)


def corpus_files(kbase) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.name for p in kbase.settings.corpus_dir.iterdir()}


def test_bad_uploads_leave_the_library_unchanged(small_kb, tmp_path: Path) -> None:
    before_docs = set(small_kb.catalog.documents)
    before_chunks = set(small_kb.catalog.chunks)
    before_files = corpus_files(small_kb)
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf")
    image_only = make_pdf(tmp_path / "blank.pdf", ["", ""])  # a real PDF with no text
    existing = tmp_path / "seed000_glossary.txt"
    existing.write_text("A second file with the name of one already in the library.")
    result = add_uploads(small_kb, [(fake, "fake.pdf"), (image_only, "blank.pdf"),
                                    (existing, "seed000_glossary.txt")],
                         ReadWriteLock(), max_mb=5)
    assert result.added == []
    reasons = dict(result.errors)
    assert "not a PDF" in reasons["fake.pdf"]
    assert "blank.pdf" in reasons and reasons["blank.pdf"]  # the ingest stage's own reason
    assert "already in the library" in reasons["seed000_glossary.txt"]
    assert "Not added: fake.pdf: not a PDF" in result.message()
    assert set(small_kb.catalog.documents) == before_docs
    assert set(small_kb.catalog.chunks) == before_chunks
    assert corpus_files(small_kb) == before_files


def test_upload_then_delete_reaches_both_indexes(small_kb, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "upload.pdf", [
        "Resettlement in Zorbania: the district moved 314 families to new houses in 2018.",
        "Each family received training in weaving and a loan for a greenhouse.",
    ], title="Zorbania resettlement report")
    progress: list[str] = []
    result = add_uploads(small_kb, [(pdf, "Zorbania report.pdf")], ReadWriteLock(),
                         max_mb=5, on_file=lambda name, i, n: progress.append(name))
    assert result.errors == [] and progress == ["Zorbania report.pdf"]
    doc = next(d for d in small_kb.documents() if d.source == "Zorbania report.pdf")
    assert (small_kb.settings.corpus_dir / "Zorbania report.pdf").is_file()
    hits = retrieve("Zorbania families resettlement", small_kb)
    assert hits and hits[0].chunk.doc_id == doc.doc_id
    dense_ids = {name: small_kb.store(name).ids(where={"doc_id": doc.doc_id})
                 for name in small_kb.embedder_names}
    assert all(dense_ids.values())

    delete_document(small_kb, doc.doc_id, ReadWriteLock())
    assert doc.doc_id not in small_kb.catalog.documents
    assert all(not small_kb.store(n).ids(where={"doc_id": doc.doc_id})
               for n in small_kb.embedder_names)
    assert all(h.chunk.doc_id != doc.doc_id for h in retrieve("Zorbania families", small_kb))
    assert not (small_kb.settings.corpus_dir / "Zorbania report.pdf").exists()
    with pytest.raises(KeyError):
        delete_document(small_kb, doc.doc_id, ReadWriteLock())


def test_glossary_lists_terms_aliases_definitions_and_mentions(small_kb) -> None:
    entries = glossary_entries(small_kb)
    defined = [g for g in entries if g.chunk is not None]
    assert {"Bellwether Effect", "East-West Pairing-up Program"} <= {g.term for g in defined}
    east_west = next(g for g in defined if g.term == "East-West Pairing-up Program")
    assert east_west.definition.startswith("The developed areas in the")
    assert east_west.document is not None and east_west.chunk.kind == "glossary"
    for g in defined:
        for m in g.mentions:
            assert all(c.chunk_id != g.chunk.chunk_id for c in m.chunks)  # "where else"
    assert any(g.matches("bellwether") for g in entries)
    assert not any(g.matches("no such term anywhere") for g in entries)
    assert glossary_entries(small_kb) is entries  # cached until the catalog changes


def test_read_write_lock_excludes_writers_from_readers() -> None:
    lock = ReadWriteLock()
    events: list[str] = []
    with lock.read():
        writer = threading.Thread(target=lambda: (lock.write().__enter__(), events.append("w")))
        writer.start()
        writer.join(0.2)
        assert events == []  # the writer waits for the reader
    writer.join(2)
    assert events == ["w"]
