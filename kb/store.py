"""The vector store: Chroma, embedded (PersistentClient under the data directory) or a server.

Embeddings are always passed explicitly (Chroma's default embedding function would download a
model). One collection per embedder, named from the model and chunking settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kb.settings import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # before chromadb is imported

import chromadb  # noqa: E402
from chromadb.config import Settings as ChromaSettings  # noqa: E402


class StoreUnavailable(RuntimeError):
    """The vector store cannot be reached (a Chroma server down, a locked directory)."""


def chroma_client(settings: Settings) -> Any:
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            return chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or 8000,
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises plain ValueError/ConnectionError here
            raise StoreUnavailable(f"Chroma server at {settings.chroma_url}: {exc}") from exc
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


@dataclass
class DenseHit:
    """One stored vector (a window of a chunk) near the query."""

    chunk_id: str
    similarity: float


class VectorStore:
    """One Chroma collection of chunk vectors with the metadata that filters use."""

    def __init__(self, client: Any, name: str):
        self.name = name
        self._collection = client.get_or_create_collection(
            name=name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )

    def count(self) -> int:
        return int(self._collection.count())

    def ids(self, where: dict[str, Any] | None = None) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._collection.get(where=where, include=[], limit=page, offset=offset)
            out.update(got["ids"])
            if len(got["ids"]) < page:
                return out
            offset += page

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]
    ) -> None:
        step = 1000  # Chroma caps batch sizes
        for i in range(0, len(ids), step):
            self._collection.upsert(
                ids=list(ids[i : i + step]),
                embeddings=vectors[i : i + step],
                metadatas=list(metadatas[i : i + step]),
            )

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        step = 1000
        for i in range(0, len(ids), step):
            self._collection.update(
                ids=list(ids[i : i + step]), metadatas=list(metadatas[i : i + step])
            )

    def delete(self, ids: Sequence[str]) -> None:
        step = 1000
        ids = list(ids)
        for i in range(0, len(ids), step):
            self._collection.delete(ids=ids[i : i + step])

    def query(
        self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[DenseHit]:
        n = self.count()
        if n == 0:
            return []
        res = self._collection.query(
            query_embeddings=[vector], n_results=min(k, n), where=where,
            include=["distances", "metadatas"],
        )
        return [
            DenseHit(str(meta["chunk_id"]), 1.0 - float(dist))
            for meta, dist in zip(res["metadatas"][0], res["distances"][0], strict=True)
        ]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (missing ids are left out); the answerer scores sentences
        against the window vectors that were embedded at ingest instead of re-embedding."""
        if not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
        return {
            str(i): np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }
