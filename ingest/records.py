"""Typed records that leave the ingest stage (see DESIGN.md: Document, Chunk)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocMeta:
    """What the manifest says about one file (all optional except the file name)."""

    source: str
    doc_id: str | None = None
    title: str | None = None
    publisher: str | None = None
    published: str | None = None  # "2021", "2021-04", "2021-07-01"
    kind: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Document:
    doc_id: str
    source: str  # file name inside the corpus directory (gold sets cite it)
    title: str
    publisher: str
    published: str  # ISO-like partial date, "" when unknown
    kind: str
    language: str
    content_hash: str  # sha256 of the raw file bytes
    pages: int  # number of pages known (PDF pages or printed page markers), 0 if none

    @property
    def year(self) -> int | None:
        head = self.published[:4]
        return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class Block:
    """A structural unit of cleaned text: a heading-free body run, glossary entry, case, note."""

    text: str
    kind: str
    section: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    title: str | None = None  # glossary term, case title


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    source: str
    text: str
    section: str  # heading path joined with " > "
    page_start: int | None
    page_end: int | None
    char_start: int  # offsets into ParsedDocument.text
    char_end: int
    kind: str
    title: str | None = None  # glossary term for kind == "glossary"

    @property
    def page(self) -> int | None:
        return self.page_start


def chunk_id_for(doc_id: str, char_start: int, char_end: int, text: str) -> str:
    """Stable id from document, span and text, so upserts are idempotent (haystack `_create_id`)."""
    digest = hashlib.sha256(f"{doc_id}:{char_start}:{char_end}:{text}".encode()).hexdigest()
    return f"c-{digest[:16]}"


@dataclass(frozen=True)
class ParsedDocument:
    document: Document
    text: str  # the cleaned document text; chunk offsets point into it
    chunks: tuple[Chunk, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)  # e.g. "decoded as cp1252"


class IngestError(Exception):
    """A file that cannot be ingested; the message names the file and the reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Exceptions copy and pickle through their args (here the joined message), which
        # __init__ cannot take back: `IngestReport.as_dict` deep-copies its errors.
        return (type(self), (self.source, self.reason))
