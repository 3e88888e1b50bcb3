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


@dataclass(frozen=True)
class Citation:
    """One cited passage: `quote` is chunk.text[quote_start:quote_end] (offsets into the chunk);
    `doc_start`/`doc_end` are the same span in the cleaned document text, for highlighting."""

    n: int
    chunk: Chunk
    document: Document
    quote_start: int
    quote_end: int

    @property
    def quote(self) -> str:
        return self.chunk.text[self.quote_start : self.quote_end]

    @property
    def doc_start(self) -> int:
        return self.chunk.char_start + self.quote_start

    @property
    def doc_end(self) -> int:
        return self.chunk.char_start + self.quote_end

    def as_dict(self) -> dict[str, Any]:
        c, d = self.chunk, self.document
        return {
            "n": self.n, "chunk_id": c.chunk_id, "doc_id": c.doc_id, "source": c.source,
            "title": d.title, "publisher": d.publisher, "published": d.published,
            "section": c.section, "page": c.page_start, "kind": c.kind,
            "quote": self.quote, "passage": c.text,
            "quote_offsets": [self.quote_start, self.quote_end],
            "char_start": self.doc_start, "char_end": self.doc_end,
        }


@dataclass(frozen=True)
class Sentence:
    """One answer sentence, the citation numbers it carries and the verifier's verdict."""

    text: str
    citations: tuple[int, ...]
    supported: bool
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text, "citations": list(self.citations), "supported": self.supported,
        }
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True)
class Answer:
    """What `answer()` returns; `as_dict()` is the `kb ask --json` shape."""

    question: str
    text: str  # Markdown with [n] markers
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...]
    abstained: bool
    mode: str
    timings: dict[str, float] = field(default_factory=dict)
    query: str = ""  # the standalone query retrieval ran (differs for follow-ups)
    notes: tuple[str, ...] = ()  # e.g. "The sources differ: ...", language notes
    evidence: float = 0.0  # the abstention signal
    language: str = "en"

    def as_dict(self, qid: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": qid}
        out |= {
            "question": self.question, "answer": self.text, "abstained": self.abstained,
            "mode": self.mode, "query": self.query, "language": self.language,
            "notes": list(self.notes), "evidence": round(self.evidence, 4),
            "sentences": [s.as_dict() for s in self.sentences],
            "citations": [c.as_dict() for c in self.citations],
            "passages": [h.as_passage() for h in self.passages],
            "timings_ms": {k: round(v, 1) for k, v in self.timings.items()},
        }
        return out
