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
import logging
import shutil
import sqlite3
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
from kb.catalog import Catalog, Entry
from kb.embcache import embed_passages, open_cache
from kb.index import KnowledgeBase, unit_chunk_id, vector_units
from kb.lexicon import LEXICON_FILE
from kb.store import StoreUnavailable, StoreWriteError

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    windows_embedded: int = 0  # vector windows the models embedded (summed over embedders)
    windows_cached: int = 0  # vector windows whose vectors came from the embedding cache
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, total_docs: int, total_chunks: int) -> str:
        cached = f" ({self.windows_cached} vectors from the cache)" if self.windows_cached else ""
        return (
            f"{total_docs} documents, {total_chunks} chunks in the index; "
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.errors)} failed; "
            f"{self.chunks_embedded} chunks embedded in {self.embed_seconds:.1f} s{cached}; "
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

    A write that fails (disk full, read-only data directory, Chroma server down) stops the run
    with one error naming the place and the cause; documents not yet updated keep their
    previous version, and vectors written for the document in progress are deleted again.

    >>> report = ingest(KnowledgeBase(Settings()))   # the whole corpus, incremental
    """
    started = time.perf_counter()
    report = IngestReport()
    try:
        _ingest(kbase, paths, progress, on_file, report)
    except WRITE_ERRORS as exc:
        report.errors.append(write_failure(kbase, exc))
        _forget_partial_write(kbase)
    report.seconds = time.perf_counter() - started
    return report


def _ingest(
    kbase: KnowledgeBase,
    paths: Sequence[Path] | None,
    progress: bool,
    on_file: Callable[[str, int, int], None] | None,
    report: IngestReport,
) -> None:
    settings = kbase.settings
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
    kbase.lexical(strict=True)  # rebuilds BM25 when the catalog changed, or when it is missing


# What a failed write of the index raises: the catalog and BM25 files (OSError: ENOSPC, EROFS,
# EACCES), the embedding cache (sqlite3), Chroma (kb.store's two exceptions).
WRITE_ERRORS = (OSError, sqlite3.Error, StoreUnavailable, StoreWriteError)


def write_failure(kbase: KnowledgeBase, exc: BaseException) -> IngestError:
    """One line for a failed write: where (the data directory, or the Chroma server) and why."""
    data_dir = kbase.settings.data_dir
    if isinstance(exc, StoreUnavailable | StoreWriteError):
        where, cause = kbase.settings.chroma_url or str(data_dir), str(exc)
    elif isinstance(exc, OSError):
        where, cause = str(data_dir), exc.strerror or str(exc) or type(exc).__name__
        if exc.filename:
            path = Path(exc.filename)
            shown = path.relative_to(data_dir) if path.is_relative_to(data_dir) else path
            cause = f"{cause} ({shown})"
    else:  # sqlite3 (the embedding cache in the data directory)
        where, cause = str(data_dir), str(exc) or type(exc).__name__
    return IngestError(where, f"ingest stopped, the index cannot be written: {cause}; documents "
                       "not yet updated keep their previous version (fix this, then run "
                       "`kb ingest` again)")


def _forget_partial_write(kbase: KnowledgeBase) -> None:
    """After a failed write, reload the catalog from disk (the in-memory one may already have
    dropped the document whose write failed) and delete the vectors it does not know (the
    document in progress); best effort, as the store may be what failed. The next ingest
    retries it."""
    try:
        kbase.catalog = Catalog(kbase.catalog.root)
    except Exception as exc:  # noqa: BLE001 - the first failure is the one reported
        log.info("could not reload the catalog: %s", exc)
        return
    try:
        _delete_orphans(kbase)
    except Exception as exc:  # noqa: BLE001 - the first failure is the one reported
        log.info("could not delete the vectors of the interrupted document: %s", exc)


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
    stale: dict[str, set[str]] = {}
    cache = open_cache(kbase.root) if kbase.settings.embedding.cache else None
    for name in kbase.embedder_names:
        store = kbase.store(name)
        present = store.ids(where={"doc_id": document.doc_id})
        missing = [u for u in units if u not in present]
        if missing:
            t0 = time.perf_counter()
            vectors, cached = embed_passages(
                kbase.embedder(name), [units[u][1] for u in missing], cache
            )
            report.embed_seconds += time.perf_counter() - t0
            report.windows_embedded += cached.embedded
            report.windows_cached += cached.cached
            report.chunks_embedded += len({units[u][0] for u in missing})
            store.upsert(
                missing, vectors,
                [unit_metadata(chunks[units[u][0]], document) for u in missing],
            )
        kept = [u for u in units if u in present]
        if kept:
            metadatas = [unit_metadata(chunks[units[u][0]], document) for u in kept]
            store.update_metadata(kept, metadatas)
        stale[name] = present - set(units)
    entry = Entry(document.doc_id, document.source, fp, len(chunks))
    kbase.catalog.put(entry, document, parsed.text, parsed.chunks)
    # The old version's vectors go only once the catalog no longer points at them: a run that
    # fails or is killed before this line leaves the previous version whole.
    for name, ids in stale.items():
        if ids:
            kbase.store(name).delete(sorted(ids))


def _remove(kbase: KnowledgeBase, doc_id: str) -> None:
    kbase.catalog.remove(doc_id)  # first: vectors the catalog does not know are ignored
    for name in kbase.embedder_names:
        store = kbase.store(name)
        store.delete(sorted(store.ids(where={"doc_id": doc_id})))


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
