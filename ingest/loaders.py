"""Turn raw bytes into text: plain text / Markdown with encoding fallback, PDFs page by page."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from ingest.records import IngestError

PDF_MAGIC = b"%PDF-"

# pypdf logs every recoverable oddity of a damaged file; the caller gets one clear error instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class PdfContent:
    pages: list[str]  # text of each page, index 0 = PDF page 1
    title: str | None
    year: str | None
    warnings: list[str]


def is_pdf(raw: bytes) -> bool:
    """PDF by content: the header may be preceded by a little junk (allowed by readers)."""
    return PDF_MAGIC in raw[:1024]


def decode_text(source: str, raw: bytes) -> tuple[str, list[str]]:
    """Decode text bytes; refuse binary content, fall back to cp1252/latin-1 with a warning."""
    sample = raw[:8192]
    if b"\x00" in sample:
        raise IngestError(source, "binary content, not text")
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if sample and controls / len(sample) > 0.05:
        raise IngestError(source, "binary content, not text")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text, [f"not valid UTF-8; decoded as {encoding}"]
    raise IngestError(source, "binary content, not text")  # pragma: no cover (latin-1 never fails)


def load_pdf(source: str, raw: bytes, max_pages: int) -> PdfContent:
    """Extract text one page at a time with pypdf, keeping PDF page order (1-based later)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:  # noqa: BLE001  (missing crypto backend, unsupported algorithm)
                ok = 0
            if not ok:
                raise IngestError(source, "encrypted PDF; decrypt it first")
        n_pages = len(reader.pages)
    except IngestError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise IngestError(source, f"not a readable PDF: {exc or type(exc).__name__}") from exc
    except Exception as exc:  # noqa: BLE001  pypdf raises many kinds on damaged files
        raise IngestError(source, f"not a readable PDF: {exc or type(exc).__name__}") from exc
    if n_pages == 0:
        raise IngestError(source, "not a readable PDF: no pages")
    if n_pages > max_pages:
        raise IngestError(source, f"PDF has too many pages: {n_pages} > limit {max_pages}")

    warnings: list[str] = []
    pages: list[str] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            pages.append(page.extract_text() or "")
        except Exception as exc:  # noqa: BLE001  one bad page must not lose the document
            warnings.append(f"page {number}: text extraction failed ({exc})")
            pages.append("")
    if not any(p.strip() for p in pages):
        raise IngestError(source, "no extractable text; OCR is not supported")

    title = year = None
    try:
        info = reader.metadata
        if info is not None:
            raw_title = info.get("/Title")
            title = str(raw_title).strip() if raw_title else None
            created = str(info.get("/CreationDate") or "")
            match = re.search(r"(19|20)\d\d", created)
            year = match.group(0) if match else None
    except Exception:  # noqa: BLE001  metadata is optional
        pass
    return PdfContent(pages=pages, title=title or None, year=year, warnings=warnings)
