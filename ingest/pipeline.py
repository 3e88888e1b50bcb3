"""The ingest stage's entry points: which files to read, and one file -> ParsedDocument.

    load (txt/md/pdf) -> normalise characters -> structure (TOC, pages, headings, notes,
    glossary, cases) -> chunk (sentence-aware, offsets into the cleaned text)
"""

from __future__ import annotations

import bisect
import hashlib
import re
from pathlib import Path

from ingest.chunker import chunk_blocks
from ingest.cleaning import collapse_spaces, normalize_chars, strip_markup
from ingest.config import IngestSettings
from ingest.loaders import decode_text, is_pdf, load_pdf
from ingest.manifest import MANIFEST_NAME
from ingest.records import DocMeta, Document, IngestError, ParsedDocument
from ingest.structure import SourceLine, structure_lines


def list_sources(paths: list[Path]) -> list[Path]:
    """Files to ingest: directories expanded recursively, sorted; the manifest and dotfiles skipped.

    >>> list_sources([Path("corpus")])  # doctest: +SKIP
    [PosixPath('corpus/000_6d8015376196ca48.txt'), ...]
    """
    found: set[Path] = set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in path.rglob("*"):
                rel = child.relative_to(path)
                if child.is_file() and not any(part.startswith(".") for part in rel.parts):
                    if child.name != MANIFEST_NAME:
                        found.add(child)
        elif path.name != MANIFEST_NAME and not path.name.startswith("."):
            found.add(path)
    return sorted(found)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "document"


def parse_file(path: Path, meta: DocMeta | None, settings: IngestSettings) -> ParsedDocument:
    """Read, clean, structure and chunk one file.

    Raises IngestError(source, reason) for a file that cannot be ingested (corrupt, encrypted,
    empty, image-only, binary, too large, unsupported type).

    >>> parsed = parse_file(Path("corpus/001_699e285056daa501.txt"), None, IngestSettings())
    ... # doctest: +SKIP
    >>> parsed.chunks[0].section  # doctest: +SKIP
    'Preface'
    """
    path = Path(path)
    source = path.name
    if not path.is_file():
        raise IngestError(source, "not a file")
    size = path.stat().st_size
    limit = settings.max_file_mb
    if size > limit * 1024 * 1024:
        mb = size / 1024 / 1024
        raise IngestError(source, f"file too large: {mb:.1f} MB > limit {limit:g} MB")
    if size == 0:
        raise IngestError(source, "empty file")
    raw = path.read_bytes()
    ext = path.suffix.lower()
    pdf = is_pdf(raw)
    if not pdf:
        if ext == ".pdf":
            raise IngestError(source, "not a readable PDF: no %PDF- header")
        if ext not in settings.extensions:
            raise IngestError(source, f"unsupported file type {ext or '(none)'}")
    elif ".pdf" not in settings.extensions:
        raise IngestError(source, "unsupported file type .pdf")

    warnings: list[str] = []
    pdf_title = pdf_year = None
    pdf_pages = 0
    if pdf:
        content = load_pdf(
            source, raw, settings.max_pdf_pages,
            max_page_content=int(settings.max_page_content_mb * 1024 * 1024),
            max_content=int(settings.max_pdf_content_mb * 1024 * 1024),
        )
        warnings.extend(content.warnings)
        pdf_title, pdf_year = content.title, content.year
        pdf_pages = len(content.pages)
        lines: list[SourceLine] = []
        for number, page_text in enumerate(content.pages, start=1):
            page_lines = normalize_chars(page_text).split("\n")
            for k, line in enumerate(page_lines):
                lines.append(SourceLine(line.rstrip(), page=number, page_start=k == 0))
            lines.append(SourceLine("", page=number))
        markdown = False
    else:
        text, decode_warnings = decode_text(source, raw)
        warnings.extend(decode_warnings)
        if not text.strip():
            raise IngestError(source, "empty file")
        text = normalize_chars(text)
        lines = [SourceLine(line.rstrip()) for line in text.split("\n")]
        markdown = ext == ".md" or bool(re.search(r"(?m)^#{1,3} \S", text))

    structured = structure_lines(lines, is_pdf=pdf, markdown=markdown)
    warnings.extend(structured.warnings)
    if not structured.text.strip():
        reason = "no extractable text; OCR is not supported" if pdf else "empty file"
        raise IngestError(source, reason)

    meta = meta or DocMeta(source=source)
    title = meta.title or pdf_title or structured.title or _first_line(lines) or path.stem
    document = Document(
        doc_id=meta.doc_id or slugify(path.stem),
        source=source,
        title=title,
        publisher=meta.publisher or "",
        published=meta.published or (pdf_year or ""),
        kind=meta.kind or "document",
        language=meta.language or "en",
        content_hash=hashlib.sha256(raw).hexdigest(),
        pages=pdf_pages if pdf else structured.pages,
    )
    offsets = [m[0] for m in structured.page_marks]
    marks = structured.page_marks

    def page_of(pos: int) -> int | None:
        k = bisect.bisect_right(offsets, pos) - 1
        return marks[k][1] if k >= 0 else None

    chunks = chunk_blocks(
        document.doc_id,
        source,
        structured.text,
        structured.blocks,
        settings.chunk_words,
        settings.overlap_sentences,
        page_of,
    )
    return ParsedDocument(
        document=document, text=structured.text, chunks=tuple(chunks), warnings=tuple(warnings)
    )


def _first_line(lines: list[SourceLine]) -> str | None:
    for line in lines:
        text = collapse_spaces(strip_markup(line.text)).strip("#* ")
        if text:
            return text[:200]
    return None
