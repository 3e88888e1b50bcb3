"""The persistent index of one data directory: catalog (chunks), vector stores, BM25.

    >>> from kb.settings import Settings
    >>> kbase = KnowledgeBase(Settings())          # opens ./data, loads nothing heavy
    >>> kbase.documents()                           # what `kb docs` lists
"""

from __future__ import annotations

import hashlib
import logging
import threading
from functools import cached_property
from pathlib import Path

from ingest.records import Chunk, Document
from ingest.sentences import split_sentences
from kb.aliases import AliasTable, DocumentNames
from kb.catalog import Catalog
from kb.embedder import Embedder, get_embedder
from kb.lexical import LexicalIndex
from kb.lexicon import Lexicon
from kb.settings import Settings
from kb.store import ChromaConnection, VectorStore

log = logging.getLogger(__name__)


class KnowledgeBase:
    """Opened once per process; models and stores load lazily and are then reused."""

    def __init__(self, settings: Settings, embedders: dict[str, Embedder] | None = None):
        self.settings = settings
        self._embedders = dict(embedders or {})
        self._lock = threading.RLock()
        self._lexical: LexicalIndex | None = None
        self.catalog = Catalog(self.root / "catalog")

    @property
    def root(self) -> Path:
        return self.settings.data_dir

    @property
    def lexical_dir(self) -> Path:
        return self.root / f"bm25-{self.settings.ingest.fingerprint()}"

    @cached_property
    def chroma(self) -> ChromaConnection:
        """The Chroma client, made on first use and again after a fault (see kb/store.py)."""
        return ChromaConnection(self.settings)

    def embedder(self, name: str) -> Embedder:
        with self._lock:
            if name not in self._embedders:
                self._embedders[name] = get_embedder(name, self.settings.embedding.batch_size)
            return self._embedders[name]

    def store(self, name: str) -> VectorStore:
        with self._lock:
            cache = self.__dict__.setdefault("_stores", {})
            if name not in cache:
                cache[name] = VectorStore(self.chroma, self.settings.index_name(name))
            return cache[name]

    @property
    def embedder_names(self) -> tuple[str, ...]:
        return tuple(self.settings.embedding.models)

    def lexical(self, strict: bool = False) -> LexicalIndex:
        """The BM25 index, rebuilt here if missing or older than the catalog. `strict` (ingest)
        raises when the rebuilt index cannot be saved; otherwise (readers) it is kept in memory
        only, so a full disk or a read-only data directory does not stop answers."""
        with self._lock:
            stamp = self.catalog.state_hash()
            if self._lexical is None or self._lexical.stamp != stamp:
                loaded = LexicalIndex.load(self.lexical_dir)
                if loaded is None or loaded.stamp != stamp:
                    loaded = self.rebuild_lexical(strict)
                self._lexical = loaded
            return self._lexical

    def rebuild_lexical(self, strict: bool = True) -> LexicalIndex:
        chunks = self.catalog.ordered_chunks()
        index = LexicalIndex.build(
            [c.chunk_id for c in chunks], [lexical_text(c) for c in chunks],
            self.catalog.state_hash(),
        )
        try:
            index.save(self.lexical_dir)
        except OSError as exc:
            if strict:
                raise
            log.warning("BM25 index kept in memory only, %s not written: %s",
                        self.lexical_dir, exc)
        self._lexical = index
        return index

    def aliases(self) -> AliasTable:
        """Curated alias groups plus the glossary terms of the current catalog (cached)."""
        with self._lock:
            stamp = self.catalog.state_hash()
            cached = self.__dict__.get("_aliases")
            if cached is None or cached[0] != stamp:
                glossary = [
                    (c.title, c.text) for c in self.catalog.ordered_chunks()
                    if c.kind == "glossary" and c.title
                ]
                corpus = self.settings.corpus_dir
                cached = (
                    stamp,
                    AliasTable.load(corpus, glossary),
                    DocumentNames.load(corpus, self.catalog.documents.values()),
                    Lexicon.load(corpus),
                )
                self.__dict__["_aliases"] = cached
            return cached[1]

    def document_names(self) -> DocumentNames:
        self.aliases()
        return self.__dict__["_aliases"][2]

    def lexicon(self) -> Lexicon:
        self.aliases()
        return self.__dict__["_aliases"][3]

    def documents(self) -> list[Document]:
        return sorted(self.catalog.documents.values(), key=lambda d: d.source)

    def document(self, doc_id: str) -> Document:
        return self.catalog.documents[doc_id]

    def chunk(self, chunk_id: str) -> Chunk | None:
        return self.catalog.chunks.get(chunk_id)


WINDOW_SENTENCES = 3  # sentences per embedded window
WINDOW_STRIDE = 2  # so consecutive windows share one sentence


def vector_units(chunk: Chunk) -> list[tuple[str, str]]:
    """(unit id, text) pairs embedded for one chunk: windows of three sentences, stride two.

    Why windows and not whole chunks: a 220-word chunk mixes several topics and one vector blurs
    them; windows keep each fact sharp and stay far below the embedders' length limits. Dense
    search then ranks a chunk by its best window (max-pooling). Measured on the dev set
    (MiniLM, hit@5): whole chunks 0.62, windows 0.71; e5 non-English hit@5: 0.17 vs 0.67.
    The glossary term or innermost heading leads each window, so short windows keep context.
    """
    spans = split_sentences(chunk.text) or [(0, len(chunk.text))]
    head = chunk.title or (chunk.section.rsplit(" > ", 1)[-1] if chunk.section else "")
    units = []
    last_start = max(0, len(spans) - WINDOW_SENTENCES)
    starts = list(range(0, last_start + 1, WINDOW_STRIDE))
    if starts[-1] < last_start:
        starts.append(last_start)
    for j, i in enumerate(starts):
        group = spans[i : i + WINDOW_SENTENCES]
        text = chunk.text[group[0][0] : group[-1][1]]
        if head and head.lower() not in text.lower():
            text = f"{head}: {text}"
        digest = hashlib.md5(text.encode()).hexdigest()[:8]  # new text, new id: re-embedded
        units.append((f"{chunk.chunk_id}:{j}-{digest}", text))
    return units


def unit_chunk_id(unit_id: str) -> str:
    return unit_id.split(":", 1)[0]


def lexical_text(chunk: Chunk) -> str:
    """What BM25 indexes: the section path and glossary term too, so headings match queries."""
    return " ".join(part for part in (chunk.title, chunk.section, chunk.text) if part)
