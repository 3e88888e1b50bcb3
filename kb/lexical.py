"""The lexical index: BM25 (bm25s) over the same chunks as the vector store, persisted beside it.

BM25 finds what embeddings blur: exact figures ("775,000"), names and rare terms. It is rebuilt
from the catalog whenever the catalog changes (seconds even at 100k chunks), written to a fresh
directory and swapped in, so an interrupted ingest leaves the previous index loadable.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")
_STOP = set(bm25s.stopwords.STOPWORDS_EN)
_DIGIT_GROUPS = re.compile(r"(?<=\d)[,\s](?=\d{3}\b)")
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lowercase, join digit groups ("775,000" -> "775000"), drop stopwords, stem (Snowball)."""
    text = _DIGIT_GROUPS.sub("", text.lower())
    words = [w for w in _TOKEN.findall(text) if w not in _STOP and (len(w) > 1 or w.isdigit())]
    return _STEMMER.stemWords(words)


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25 | None, ids: list[str], stamp: str):
        self._retriever = retriever
        self.ids = ids
        self.stamp = stamp
        self._position = {chunk_id: i for i, chunk_id in enumerate(ids)}

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str], stamp: str) -> LexicalIndex:
        retriever = None
        if ids:
            retriever = bm25s.BM25()
            retriever.index([tokenize(t) or ["\u2205"] for t in texts], show_progress=False)
        return cls(retriever, list(ids), stamp)

    def save(self, directory: Path) -> None:
        """Write into a sibling temp directory, then swap it in."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps({"stamp": self.stamp, "ids": self.ids}))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        meta = directory / "ids.json"
        if not meta.exists():
            old = directory.with_name(directory.name + ".old")  # killed between two renames
            if (old / "ids.json").exists():
                directory = old
                meta = old / "ids.json"
            else:
                return None
        payload = json.loads(meta.read_text())
        retriever = None
        if payload["ids"]:
            retriever = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(retriever, payload["ids"], payload["stamp"])

    def search(
        self, query: str, k: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """Top-k (chunk_id, score) with score > 0; `allowed` restricts to those chunk ids."""
        tokens = tokenize(query)
        if self._retriever is None or not tokens:
            return []
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=np.float32)
            for chunk_id in allowed:
                pos = self._position.get(chunk_id)
                if pos is not None:
                    mask[pos] = 1.0
            if not mask.any():
                return []
        k = min(k, len(self.ids))
        docs, scores = self._retriever.retrieve(
            [tokens], k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [
            (self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0
        ]
