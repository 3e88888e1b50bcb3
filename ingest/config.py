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
    extensions: tuple[str, ...] = Field(
        (".txt", ".md", ".pdf"), description="File types that can be ingested."
    )

    def fingerprint(self) -> str:
        """What changes chunk boundaries, for naming the vector collection."""
        return f"w{self.chunk_words}-o{self.overlap_sentences}"
