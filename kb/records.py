"""Typed records of the kb stage (Document and Chunk come from ingest.records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.records import Chunk, Document


@dataclass(frozen=True)
class Filters:
    """Restricts retrieval; applied in dense and lexical search alike. Empty means everything."""

    doc_ids: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None

    def is_empty(self) -> bool:
        return not (self.doc_ids or self.publishers or self.kinds or self.year_from or self.year_to)

    def accepts(self, chunk: Chunk, document: Document) -> bool:
        year = document.year or 0
        return (
            (not self.doc_ids or chunk.doc_id in self.doc_ids)
            and (not self.publishers or document.publisher in self.publishers)
            and (not self.kinds or chunk.kind in self.kinds)
            and (self.year_from is None or year >= self.year_from)
            and (self.year_to is None or year <= self.year_to)
        )

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.doc_ids:
            clauses.append({"doc_id": {"$in": list(self.doc_ids)}})
        if self.publishers:
            clauses.append({"publisher": {"$in": list(self.publishers)}})
        if self.kinds:
            clauses.append({"kind": {"$in": list(self.kinds)}})
        if self.year_from is not None:
            clauses.append({"year": {"$gte": self.year_from}})
        if self.year_to is not None:
            clauses.append({"year": {"$lte": self.year_to}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    document: Document
    score: float
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever evidence of the rank

    def as_passage(self) -> dict[str, Any]:
        """The passage shape `kb search --json`, `kb ask --json` and the evaluators share."""
        c = self.chunk
        return {
            "chunk_id": c.chunk_id, "doc_id": c.doc_id, "source": c.source,
            "section": c.section, "page": c.page_start, "kind": c.kind,
            "score": round(self.score, 5), "scores": self.scores, "text": c.text,
        }
