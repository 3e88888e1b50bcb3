"""Uploads from a hostile or broken client: path traversal, absolute paths, NUL and bidi
characters, Windows separators, hidden files, over-size files, wrong types. Each is refused with
a clear message and logged; nothing is written outside the corpus directory, and nothing is
added to the library."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.library import ReadWriteLock, UploadError, add_uploads, check_name, check_upload, safe_name
from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.settings import Settings
from tests.fakes import FakeEmbedder
from tests.hostile.strategies import examples
from tests.ingest.conftest import make_pdf

TEXT = b"Field notes\n\nThe village built a clinic in 2018. A doctor visits every week.\n"
NAMES = {
    "../../etc/passwd.txt": "folder path",
    "../notes.md": "folder path",
    "/etc/cron.d/job.txt": "folder path",
    "/tmp/x/report.pdf": "folder path",
    "..\\..\\windows\\system32\\evil.txt": "folder path",
    "C:\\Users\\me\\report.txt": "folder path",
    "notes.txt\x00.pdf": "control",
    "notes\x00.txt": "control",
    "line\nbreak.txt": "control",
    "report\u202etxt.exe": "control or text-direction",
    ".bashrc.txt": "hidden",
    ".hidden.md": "hidden",
    "..": "no name",
    " . ": "no name",
    "": "no name",
}


@pytest.mark.parametrize("name, reason", NAMES.items(), ids=[repr(n) for n in NAMES])
def test_unsafe_names_are_refused_with_the_reason(tmp_path: Path, name: str,
                                                  reason: str) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(TEXT)
    with pytest.raises(UploadError) as info:
        check_upload(path, name, max_mb=1)
    assert reason in info.value.reason and info.value.name == name


@examples(300)
@given(st.one_of(st.text(max_size=80), st.text(st.sampled_from("./\\\x00 .a\u202e"), max_size=12)
                 .map(lambda s: s + ".txt")))
def test_a_name_either_is_refused_or_stays_inside_the_corpus(name: str) -> None:
    corpus = Path("/srv/kb/corpus")
    try:
        check_name(name)
    except UploadError as exc:
        assert exc.reason
        return
    clean = safe_name(name)
    assert clean and not clean.startswith(".") and len(clean) <= 120
    assert "/" not in clean and "\\" not in clean and "\x00" not in clean
    assert (corpus / clean).parent == corpus and clean not in (".", "..")


WRONG_TYPES = {
    "setup.pdf": (b"MZ\x90\x00" + bytes(range(256)) * 8, "not a PDF: the content is a Windows"),
    "tool.pdf": (b"\x7fELF\x02\x01\x01" + b"\x00" * 500, "not a PDF: the content is a program"),
    "archive.md": (b"PK\x03\x04" + b"\x00" * 200, "not a text file: the content is a ZIP"),
    "binary.txt": (bytes(range(256)) * 8, "not a text file: the content is binary data"),
    "photo.txt": (b"\xff\xd8\xff\xe0" + b"\x10" * 300, "not a text file: the content is a JPEG"),
    "paper.txt": (b"%PDF-1.7\n%...", "rename a PDF to .pdf"),
    "virus.exe": (TEXT, "unsupported file type '.exe'"),
    "page.html": (b"<html><script>alert(1)</script></html>", "unsupported file type '.html'"),
    "manifest.toml": (b"[x]\n", "unsupported file type '.toml'"),
    "noextension": (TEXT, "unsupported file type '(none)'"),
    "empty.txt": (b"", "empty file"),
    "big.txt": (TEXT * 200, "file too large"),
}


@pytest.mark.parametrize("name", WRONG_TYPES)
def test_wrong_types_and_sizes_are_refused(tmp_path: Path, name: str) -> None:
    data, reason = WRONG_TYPES[name]
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    with pytest.raises(UploadError) as info:
        check_upload(path, name, max_mb=0.01)
    assert reason in info.value.reason


@pytest.fixture
def library(tmp_path: Path) -> KnowledgeBase:
    """An empty library inside tmp_path/site, so that anything written outside the corpus (in
    tmp_path/site or above it) can be seen."""
    corpus = tmp_path / "site" / "corpus"
    corpus.mkdir(parents=True)
    kbase = KnowledgeBase(Settings(data_dir=tmp_path / "site" / "data", corpus_dir=corpus),
                          embedders={"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")})
    assert ingest(kbase, progress=False).ok
    return kbase


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "data" not in p.parts}


def test_hostile_uploads_are_refused_logged_and_write_nothing(
    library: KnowledgeBase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    uploads = []
    for k, name in enumerate(NAMES):
        path = incoming / f"n{k}.txt"
        path.write_bytes(TEXT)
        uploads.append((path, name))
    for k, (name, (data, _)) in enumerate(WRONG_TYPES.items()):
        path = incoming / f"t{k}.bin"
        path.write_bytes(data)
        uploads.append((path, name))
    good = make_pdf(incoming / "good.pdf", ["Each family received a loan of 8,000 yuan for a "
                                            "greenhouse that grows mushrooms."])
    uploads.append((good, "greenhouse loans.pdf"))
    before_site, before_tmp = tree(site), tree(tmp_path)

    with caplog.at_level(logging.INFO, logger="app.library"):
        result = add_uploads(library, uploads, ReadWriteLock(), max_mb=0.01)

    assert result.added == ["greenhouse loans.pdf"]
    refused = [name for name, _ in result.errors]
    assert refused == [name for _, name in uploads[:-1]]  # every bad one, in order
    assert all(reason for _, reason in result.errors)
    message = result.message()
    assert "Not added: ../../etc/passwd.txt: the file name contains a folder path" in message
    assert "Not added: setup.pdf: not a PDF: the content is a Windows program" in message
    # Logged, one warning per refused file, the name quoted (a newline cannot forge a line).
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(refused)
    assert all(r.getMessage().startswith("upload refused: ") for r in warnings)
    assert "'line\\nbreak.txt'" in caplog.text and "line\nbreak" not in caplog.text
    assert any("upload added" in r.getMessage() for r in caplog.records)
    # Only the good file was written, into the corpus; nothing anywhere else.
    assert tree(site) - before_site == {"corpus/greenhouse loans.pdf"}
    assert tree(tmp_path) - before_tmp == {"site/corpus/greenhouse loans.pdf"}
    assert [d.source for d in library.documents()] == ["greenhouse loans.pdf"]


def test_a_file_that_fails_ingest_is_logged_and_removed(
    library: KnowledgeBase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    locked = make_pdf(tmp_path / "locked.pdf", ["A secret."], owner_password="o",
                      user_password="secret")
    with caplog.at_level(logging.WARNING, logger="app.library"):
        result = add_uploads(library, [(locked, "locked.pdf")], ReadWriteLock(), max_mb=5)
    assert result.errors == [("locked.pdf", "encrypted PDF; decrypt it first")]
    assert "upload refused: 'locked.pdf': encrypted PDF" in caplog.text
    assert list(library.settings.corpus_dir.iterdir()) == []
