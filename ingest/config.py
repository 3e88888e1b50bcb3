"""Settings of the ingest stage; kb.settings nests them so one object reaches every stage."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IngestSettings(BaseModel):
    chunk_words: int = Field(
        220,
        description="Maximum words per chunk; the embedders truncate at 256 word pieces.",
    )
    overlap_sentences: int = Field(
        1, description="Sentences repeated from the end of one chunk at the start of the next."
    )
    max_file_mb: float = Field(50.0, description="Files larger than this are refused.")
    max_pdf_pages: int = Field(3000, description="PDFs with more pages than this are refused.")
    max_page_content_mb: float = Field(
        2.0,
        description="A PDF page whose decoded content stream is larger than this is skipped "
        "with a warning: a page of prose is a few KB; megabytes are drawings or a "
        "decompression bomb, and text extraction time grows with them.",
    )
    max_pdf_content_mb: float = Field(
        64.0,
        description="A PDF whose pages' decoded content streams add up to more than this is "
        "refused before any text is extracted (a small file can reuse one large stream on "
        "every page); 3,000 pages of dense text are about 45 MB.",
    )
    extensions: tuple[str, ...] = Field(
        (".txt", ".md", ".pdf"), description="File types that can be ingested."
    )

    def fingerprint(self) -> str:
        """What changes chunk boundaries, for naming the vector collection."""
        return f"w{self.chunk_words}-o{self.overlap_sentences}"


def parser_version() -> str:
    """Hash of the ingest package's own source: a change to cleaning or chunking code makes
    every document count as changed at the next ingest (only changed chunks are re-embedded)."""
    import hashlib
    from pathlib import Path

    h = hashlib.md5()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]
