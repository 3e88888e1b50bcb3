"""Each bad file gets one IngestError with a clear reason; non-UTF-8 text only a warning."""

from __future__ import annotations

import pytest

from ingest.config import IngestSettings
from ingest.pipeline import parse_file
from ingest.records import IngestError

from .conftest import make_pdf

TEXT = "Poverty alleviation is a long task. It needs patience and precise measures."


def _reason(path, settings=None) -> str:
    with pytest.raises(IngestError) as info:
        parse_file(path, None, settings or IngestSettings())
    assert info.value.source == path.name
    assert path.name in str(info.value)
    return info.value.reason


def test_corrupt_pdf(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage garbage\n%%EOF")
    assert _reason(path).startswith("not a readable PDF")


def test_pdf_extension_without_pdf_content(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_text("just some text pretending", encoding="utf-8")
    assert _reason(path).startswith("not a readable PDF")


def test_pdf_content_with_txt_name_is_read_as_pdf(tmp_path):
    path = make_pdf(tmp_path / "misnamed.txt", [TEXT])
    parsed = parse_file(path, None, IngestSettings())
    assert "precise measures" in parsed.text
    assert parsed.chunks[0].page_start == 1


def test_encrypted_pdf(tmp_path):
    path = make_pdf(tmp_path / "locked.pdf", [TEXT], owner_password="o", user_password="secret")
    assert _reason(path) == "encrypted PDF; decrypt it first"


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path):
    path = make_pdf(tmp_path / "owner_only.pdf", [TEXT], owner_password="owner")
    parsed = parse_file(path, None, IngestSettings())
    assert "precise measures" in parsed.text


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert _reason(path) == "empty file"
    blank = tmp_path / "blank.md"
    blank.write_text("  \n\n \n", encoding="utf-8")
    assert _reason(blank) == "empty file"


def test_image_only_pdf(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(200, 30, 30)
    pdf.rect(20, 20, 100, 60, style="F")
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    assert _reason(path) == "no extractable text; OCR is not supported"


def test_binary_content_with_txt_name(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert _reason(path) == "binary content, not text"


def test_non_utf8_text_is_decoded_with_a_warning(tmp_path):
    path = tmp_path / "latin.txt"
    text = "Caf\u00e9 owners in the village earn more. The \u201cfive batches\u201d work."
    path.write_bytes(text.encode("cp1252"))
    parsed = parse_file(path, None, IngestSettings())
    assert "Caf\u00e9 owners" in parsed.text
    assert '"five batches"' in parsed.text
    assert any("cp1252" in w for w in parsed.warnings)


def test_file_too_large(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text(TEXT * 200, encoding="utf-8")
    reason = _reason(path, IngestSettings(max_file_mb=0.001))
    assert reason.startswith("file too large:") and "MB > limit" in reason


def test_unknown_extension(tmp_path):
    path = tmp_path / "table.xyz"
    path.write_text(TEXT, encoding="utf-8")
    assert _reason(path) == "unsupported file type .xyz"


def test_pdf_over_page_limit(tmp_path):
    path = make_pdf(tmp_path / "long.pdf", [TEXT, TEXT, TEXT])
    reason = _reason(path, IngestSettings(max_pdf_pages=2))
    assert reason == "PDF has too many pages: 3 > limit 2"
