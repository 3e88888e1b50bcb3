"""Turn raw bytes into text: plain text / Markdown with encoding fallback, PDFs page by page."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

from ingest.records import IngestError

PDF_MAGIC = b"%PDF-"
_MB = 1024 * 1024

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


def load_pdf(
    source: str, raw: bytes, max_pages: int, *, max_page_content: int = 2 * _MB,
    max_content: int = 64 * _MB,
) -> PdfContent:
    """Extract text one page at a time with pypdf, keeping PDF page order (1-based later).

    Bounded work for hostile files: the declared page count is checked before the page tree is
    walked; every page's content stream is decoded (pypdf caps one stream at 75 MB) and the
    document is refused when they add up to more than `max_content` bytes, before any text
    extraction (whose time grows with them); a page over `max_page_content` is skipped.
    """
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
        declared = _declared_page_count(reader)
        if declared > max_pages:
            raise IngestError(source, f"PDF has too many pages: {declared} > limit {max_pages}")
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
    failed: list[str] = []  # pages that could not be read at all
    sizes: list[int | None] = []  # decoded content bytes per page; None = unreadable
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            size = _content_size(page)
        except Exception as exc:  # noqa: BLE001  over pypdf's limits, or a broken stream
            failed.append(f"page {number}: content unreadable ({exc or type(exc).__name__})")
            sizes.append(None)
            continue
        total += size
        if total > max_content:
            raise IngestError(
                source, f"PDF page content too large: over {max_content / _MB:.4g} MB decoded "
                f"by page {number} of {n_pages} (a decompression bomb, or drawings, not text)")
        if size > max_page_content:
            failed.append(f"page {number}: content of {size / _MB:.1f} MB skipped (limit "
                          f"{max_page_content / _MB:.4g} MB per page)")
            sizes.append(None)
            continue
        sizes.append(size)

    pages: list[str] = []
    for number, (page, size) in enumerate(zip(reader.pages, sizes, strict=True), start=1):
        if size is None:
            pages.append("")
            continue
        try:
            pages.append(page.extract_text() or "")
        except Exception as exc:  # noqa: BLE001  one bad page must not lose the document
            failed.append(f"page {number}: text extraction failed ({exc})")
            pages.append("")
    warnings.extend(failed)
    if not any(p.strip() for p in pages):
        if failed:
            more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
            raise IngestError(source, f"no extractable text: {failed[0]}{more}")
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


def _declared_page_count(reader) -> int:  # type: ignore[no-untyped-def]
    """/Count of the page tree root: read before the tree is walked (0 when absent or odd)."""
    try:
        count = reader.trailer["/Root"]["/Pages"].get("/Count", 0)
        return int(count) if isinstance(count, int) else 0
    except Exception:  # noqa: BLE001  a broken tree is found (and reported) by the walk
        return 0


def _content_size(page) -> int:  # type: ignore[no-untyped-def]
    """Decoded bytes of a page's content stream(s); pypdf caches the decoded data, so text
    extraction does not decode it again."""
    contents = page.get("/Contents")
    if contents is None:
        return 0
    obj = contents.get_object()
    streams = obj if isinstance(obj, list) else [obj]
    return sum(len(s.get_object().get_data()) for s in streams if s is not None)
