"""Hybrid retrieval: dense (one Chroma collection per embedder) + BM25, fused, filtered.

    >>> hits = retrieve("What are the five batches?", kbase, k=5)
    >>> hits[0].chunk.title
    'Five Batches'

Fusion is weighted reciprocal rank fusion (Cormack et al. 2009): the retrievers' scores live on
different scales (cosine vs. unbounded BM25), RRF needs no score calibration, and a passage that
only one retriever finds (an exact figure that only BM25 matches) still enters the fused list.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from kb.index import KnowledgeBase
from kb.language import is_english
from kb.records import Filters, Hit

MAX_QUERY_CHARS = 2000  # beyond this a "question" is a pasted document: use its head


@dataclass(frozen=True)
class RetrievalConfig:
    """Which stages run; `kb eval --retrieval` compares these side by side."""

    dense: tuple[str, ...] = ("minilm", "e5")
    lexical: bool = True
    name: str = "full"


FULL = RetrievalConfig()
DENSE = RetrievalConfig(dense=("minilm",), lexical=False, name="dense")
BM25 = RetrievalConfig(dense=(), lexical=True, name="bm25")
E5 = RetrievalConfig(dense=("e5",), lexical=False, name="e5")


def retrieve(
    query: str,
    kbase: KnowledgeBase,
    filters: Filters | None = None,
    k: int | None = None,
    config: RetrievalConfig = FULL,
    timings: dict[str, float] | None = None,
) -> list[Hit]:
    """Ranked passages for `query`, best first (at most `k`, default from settings)."""
    t0 = time.perf_counter()
    k = k or kbase.settings.retrieval.k
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    filters = filters or Filters()
    n_cand = max(kbase.settings.retrieval.candidates, k)
    catalog = kbase.catalog
    allowed = None
    if not filters.is_empty():
        allowed = {
            cid for cid, c in catalog.chunks.items()
            if filters.accepts(c, catalog.documents[c.doc_id])
        }
        if not allowed:
            return []

    english = is_english(query)
    rankings: dict[str, list[tuple[str, float]]] = {}
    weights: dict[str, float] = {}
    for name in config.dense:
        if name not in kbase.embedder_names:
            continue
        vector = kbase.embedder(name).embed_query(query)
        found = kbase.store(name).query(vector, n_cand * 4, where=filters.chroma_where())
        best: dict[str, float] = {}  # a chunk ranks by its best window (max-pooling)
        for h in found:
            if h.chunk_id in catalog.chunks and h.chunk_id not in best:
                best[h.chunk_id] = h.similarity
        rankings[name] = list(best.items())[:n_cand]
        # MiniLM only knows English: for other languages its ranking is noise.
        weights[name] = 1.0 if (english or name != "minilm") else 0.0
    if config.lexical:
        rankings["bm25"] = kbase.lexical().search(query, n_cand, allowed)
        weights["bm25"] = 1.0 if english else 0.3
    t1 = time.perf_counter()

    fused: dict[str, float] = defaultdict(float)
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    rrf_k = kbase.settings.retrieval.rrf_k
    for name, ranking in rankings.items():
        for rank, (chunk_id, score) in enumerate(ranking):
            fused[chunk_id] += weights[name] / (rrf_k + rank + 1)
            scores[chunk_id][name] = round(score, 4)
            scores[chunk_id][f"{name}_rank"] = rank + 1
    order = sorted(fused, key=lambda c: (-fused[c], c))[:k]
    hits = []
    for chunk_id in order:
        chunk = catalog.chunks[chunk_id]
        scores[chunk_id]["rrf"] = round(fused[chunk_id], 5)
        hits.append(Hit(chunk, catalog.documents[chunk.doc_id], fused[chunk_id], scores[chunk_id]))
    if timings is not None:
        timings["search"] = (t1 - t0) * 1000
        timings["fuse"] = (time.perf_counter() - t1) * 1000
    return hits
