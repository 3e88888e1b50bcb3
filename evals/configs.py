"""Named configurations that `kb eval` compares side by side, each a search function."""

from __future__ import annotations

import dataclasses
from typing import Any

from evals.retrieval import SearchFn
from kb.index import KnowledgeBase
from kb.retriever import BM25, DENSE, E5, FULL, HYBRID, RetrievalConfig, retrieve

RETRIEVAL_CONFIGS: dict[str, RetrievalConfig] = {c.name: c for c in (DENSE, E5, BM25, HYBRID, FULL)}
ALL_RETRIEVAL = ("naive", "dense", "bm25", "full")


def search_fn_for(name: str, kbase: KnowledgeBase, k: int = 10) -> tuple[SearchFn, dict[str, Any]]:
    """(search function, settings it ran with) for a configuration name."""
    if name == "naive":
        from evals.naive import build_naive, naive_config

        return build_naive(kbase.settings.corpus_dir, k=k), naive_config(k)
    if name not in RETRIEVAL_CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(ALL_RETRIEVAL)}")
    config = RETRIEVAL_CONFIGS[name]

    def search(question: str) -> list[dict[str, Any]]:
        return [h.as_passage() for h in retrieve(question, kbase, k=k, config=config)]

    return search, {"config": dataclasses.asdict(config), **kbase.settings.describe()}
