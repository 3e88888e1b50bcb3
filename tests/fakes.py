"""Fakes, not mocks: deterministic stand-ins that still behave like the real thing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from kb.lexical import tokenize


class FakeEmbedder:
    """Hashed bag of stemmed words: similar texts get similar vectors, so ranking still means
    something (unlike a constant mock embedding). Counts calls so tests can assert reuse."""

    def __init__(self, name: str = "minilm", dim: int = 256):
        self.name = name
        self.dim = dim
        self.passages_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize(text):
            h = int(hashlib.md5(tok.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.passages_embedded += len(texts)
        return np.vstack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)
