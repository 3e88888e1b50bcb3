"""Ingest: parse files (ingest/), embed new chunks, keep the catalog, Chroma and BM25 in step.

Incremental and idempotent: a document whose bytes, manifest entry and chunking are unchanged is
skipped; a changed one embeds only chunk ids not already stored (ids are content hashes) and
drops its stale ones; a file gone from the corpus loses its chunks. The catalog entry of a
document is written only after its vectors are stored, so a run killed half-way leaves the
previous index usable and the next run converges to the same state as a clean ingest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ingest.config import parser_version
from ingest.manifest import load_manifest
from ingest.pipeline import list_sources, parse_file
from ingest.records import Chunk, DocMeta, Document, IngestError, ParsedDocument
from kb.aliases import ALIASES_FILE
from kb.catalog import Entry
from kb.index import KnowledgeBase, unit_chunk_id, vector_units
from kb.lexicon import LEXICON_FILE


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, total_docs: int, total_chunks: int) -> str:
        return (
            f"{total_docs} documents, {total_chunks} chunks in the index; "
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.errors)} failed; "
            f"{self.chunks_embedded} chunks embedded in {self.embed_seconds:.1f} s; "
            f"{self.seconds:.1f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["errors"] = [{"source": e.source, "reason": e.reason} for e in self.errors]
        return out


def fingerprint(raw: bytes, meta: DocMeta | None, chunking: str) -> str:
    h = hashlib.sha256(raw)
    h.update(json.dumps(dataclasses.asdict(meta) if meta else {}, sort_keys=True).encode())
    h.update(chunking.encode())
    return h.hexdigest()[:24]


def unit_metadata(chunk: Chunk, document: Document) -> dict[str, Any]:
    """What Chroma stores beside a vector: its chunk and the fields filters use (no None)."""
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "source": chunk.source,
        "kind": chunk.kind,
        "year": document.year or 0,
        "publisher": document.publisher,
    }


def import_files(paths: Sequence[Path], corpus_dir: Path) -> list[Path]:
    """Copy files given from outside the corpus into it, so the corpus stays the one truth."""
    out = []
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path.is_file() and path.resolve().parent != corpus_dir.resolve():
            target = corpus_dir / path.name
            shutil.copyfile(path, target)
            out.append(target)
        else:
            out.append(path)
    return out


def ingest(
    kbase: KnowledgeBase,
    paths: Sequence[Path] | None = None,
    progress: bool = True,
    on_file: Callable[[str, int, int], None] | None = None,
) -> IngestReport:
    """Bring the index in line with the corpus directory (or add/refresh just `paths`).

    >>> report = ingest(KnowledgeBase(Settings()))   # the whole corpus, incremental
    """
    settings = kbase.settings
    started = time.perf_counter()
    report = IngestReport()
    corpus_dir = settings.corpus_dir
    whole_corpus = not paths
    manifest: dict[str, DocMeta] = {}
    try:
        manifest = load_manifest(corpus_dir)
    except IngestError as exc:
        report.errors.append(exc)
    files = list_sources([corpus_dir] if whole_corpus else import_files(paths or [], corpus_dir))
    files = [f for f in files if f.name not in (ALIASES_FILE, LEXICON_FILE)]  # data, not documents
    catalog = kbase.catalog
    by_source = {e.source: e for e in catalog.registry.values()}
    chunking = f"{settings.ingest.fingerprint()}:{parser_version()}"
    seen_docs: set[str] = set()

    bar = tqdm(files, desc="ingest", unit="file", disable=not progress)
    for i, path in enumerate(bar):
        bar.set_postfix_str(path.name[:30])
        if on_file:
            on_file(path.name, i, len(files))
        meta = manifest.get(path.name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            report.errors.append(IngestError(path.name, f"cannot read: {exc.strerror}"))
            continue
        fp = fingerprint(raw, meta, chunking)
        old = by_source.get(path.name)
        if old and old.fingerprint == fp and _complete(kbase, old.doc_id):
            seen_docs.add(old.doc_id)
            report.unchanged.append(path.name)
            continue
        try:
            parsed = parse_file(path, meta, settings.ingest)
        except IngestError as exc:
            report.errors.append(exc)
            if old:
                seen_docs.add(old.doc_id)  # keep what was ingested before
            continue
        doc_id = parsed.document.doc_id
        if doc_id in seen_docs:
            report.errors.append(
                IngestError(path.name, f"doc_id {doc_id!r} is already used by another file")
            )
            continue
        if old and old.doc_id != doc_id:  # the manifest renamed the document
            _remove(kbase, old.doc_id)
        report.warnings.extend(f"{path.name}: {w}" for w in parsed.warnings)
        _store(kbase, parsed, fp, report)
        seen_docs.add(doc_id)
        (report.updated if old else report.added).append(path.name)

    if whole_corpus:
        for doc_id in sorted(set(catalog.registry) - seen_docs):
            report.removed.append(catalog.registry[doc_id].source)
            _remove(kbase, doc_id)
    _delete_orphans(kbase)
    kbase.lexical()  # rebuilds BM25 when the catalog changed, or when it is missing
    report.seconds = time.perf_counter() - started
    return report


def _expected_units(kbase: KnowledgeBase, chunks: Sequence[Chunk]) -> dict[str, tuple[str, str]]:
    """unit id -> (chunk id, text) for every vector a set of chunks should have."""
    return {
        unit_id: (c.chunk_id, text) for c in chunks for unit_id, text in vector_units(c)
    }


def _complete(kbase: KnowledgeBase, doc_id: str) -> bool:
    """Every embedder's collection holds exactly this document's vectors (a new embedder
    configured since the last run, or a half-done run, makes it incomplete)."""
    catalog = kbase.catalog
    expected = set(_expected_units(kbase, [catalog.chunks[c] for c in catalog.chunk_ids(doc_id)]))
    return all(
        kbase.store(name).ids(where={"doc_id": doc_id}) == expected
        for name in kbase.embedder_names
    )


def _store(kbase: KnowledgeBase, parsed: ParsedDocument, fp: str, report: IngestReport) -> None:
    document = parsed.document
    chunks = {c.chunk_id: c for c in parsed.chunks}
    units = _expected_units(kbase, list(parsed.chunks))
    for name in kbase.embedder_names:
        store = kbase.store(name)
        present = store.ids(where={"doc_id": document.doc_id})
        missing = [u for u in units if u not in present]
        if missing:
            t0 = time.perf_counter()
            vectors = kbase.embedder(name).embed_passages([units[u][1] for u in missing])
            report.embed_seconds += time.perf_counter() - t0
            report.chunks_embedded += len({units[u][0] for u in missing})
            store.upsert(
                missing, vectors,
                [unit_metadata(chunks[units[u][0]], document) for u in missing],
            )
        kept = [u for u in units if u in present]
        if kept:
            metadatas = [unit_metadata(chunks[units[u][0]], document) for u in kept]
            store.update_metadata(kept, metadatas)
        stale = present - set(units)
        if stale:
            store.delete(sorted(stale))
    entry = Entry(document.doc_id, document.source, fp, len(chunks))
    kbase.catalog.put(entry, document, parsed.text, parsed.chunks)


def _remove(kbase: KnowledgeBase, doc_id: str) -> None:
    for name in kbase.embedder_names:
        store = kbase.store(name)
        store.delete(sorted(store.ids(where={"doc_id": doc_id})))
    kbase.catalog.remove(doc_id)


def _delete_orphans(kbase: KnowledgeBase) -> None:
    """Vectors whose chunk is not in the catalog (left by a killed run) are deleted."""
    known = set(kbase.catalog.chunks)
    for name in kbase.embedder_names:
        store = kbase.store(name)
        orphans = {u for u in store.ids() if unit_chunk_id(u) not in known}
        if orphans:
            store.delete(sorted(orphans))


def remove_document(kbase: KnowledgeBase, doc_id: str) -> Document:
    """Delete one document's chunks from every index and its file from the corpus."""
    document = kbase.document(doc_id)
    _remove(kbase, doc_id)
    (kbase.settings.corpus_dir / document.source).unlink(missing_ok=True)
    kbase.lexical()
    return document
