"""Named configurations that `kb eval` compares side by side: each is a search function (scored
by the retrieval eval) and an answer function (scored by the answer eval).

- naive: the LlamaIndex baseline (evals/naive.py). It has no answer engine of its own, so its
  answer is what a naive RAG shows without a language model: the leading sentences of its top
  passage, up to the answer length kb uses (`answer.max_words`), every sentence cited [1] to that
  passage. It never abstains.
- dense, e5, bm25, hybrid, full: kb's retrieval configurations (kb.retriever); the answer is
  kb's extractive engine fed by that configuration's passages (`answer(..., retrieval=config)`).
- generative: a language model writes from the full pipeline's passages (kb.generative); it runs
  only when one is configured (KB_LLM / KB_LLM_URL), otherwise it is reported as skipped.

    >>> pipeline = pipeline_for("full", kbase)  # doctest: +SKIP
    >>> pipeline.search("What are the five batches?")[0]["source"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from evals.answers import AnswerFn
from evals.retrieval import SearchFn, config_hash
from kb.index import KnowledgeBase
from kb.retriever import BM25, DENSE, E5, FULL, HYBRID, RetrievalConfig, retrieve

RETRIEVAL_CONFIGS: dict[str, RetrievalConfig] = {c.name: c for c in (DENSE, E5, BM25, HYBRID, FULL)}
KNOWN = ("naive", "dense", "e5", "bm25", "hybrid", "full", "generative")
DEFAULT_CONFIGS = ("naive", "dense", "hybrid", "full")
DESCRIPTIONS = {
    "naive": "LlamaIndex defaults (SentenceSplitter 1024 tokens, VectorStoreIndex, MiniLM); "
             "answer = leading sentences of the top passage, cited to it",
    "dense": "MiniLM sentence windows only; extractive answer",
    "e5": "multilingual-e5 sentence windows only; extractive answer",
    "bm25": "BM25 only (with query translation); extractive answer",
    "hybrid": "MiniLM + e5 + BM25, weighted RRF; extractive answer",
    "full": "hybrid + aliases, document boost, re-ranking, folding, diversity; extractive answer",
    "generative": "full retrieval; a language model writes, the verifier gates",
}
# What never changes results (paths, the web server), left out of the settings hash.
_NOT_HASHED = {"data_dir", "corpus_dir", "host", "port", "app"}


class Unavailable(RuntimeError):
    """A configuration that cannot run here (e.g. generative without a model); the message says
    why, and the report shows it as skipped with that reason."""


@dataclass
class Pipeline:
    name: str
    search: SearchFn
    answer: AnswerFn
    settings: dict[str, Any] = field(default_factory=dict)  # what its results depend on
    description: str = ""

    @property
    def config_hash(self) -> str | None:
        return config_hash(self.settings)


def run_settings(kbase: KnowledgeBase, **extra: Any) -> dict[str, Any]:
    """The settings a kb configuration's results depend on (hashed into its `config_hash`)."""
    return {**extra, "settings": kbase.settings.model_dump(mode="json", exclude=_NOT_HASHED)}


def pipeline_for(name: str, kbase: KnowledgeBase, k: int = 10) -> Pipeline:
    """The search and answer functions of a configuration name; raises Unavailable (cannot run
    here) or ValueError (unknown name)."""
    if name == "naive":
        return _naive(kbase, k)
    if name == "generative":
        return _generative(kbase, k)
    if name not in RETRIEVAL_CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(KNOWN)}")
    from kb.answer import answer

    config = RETRIEVAL_CONFIGS[name]

    def search(question: str) -> list[dict[str, Any]]:
        return [h.as_passage() for h in retrieve(question, kbase, k=k, config=config)]

    def run(question: str) -> dict[str, Any]:
        return answer(question, kbase, mode="extractive", retrieval=config).as_dict()

    settings = run_settings(kbase, retrieval=dataclasses.asdict(config), k=k,
                            answer_mode="extractive")
    return Pipeline(name, search, run, settings, DESCRIPTIONS[name])


def search_fn_for(name: str, kbase: KnowledgeBase, k: int = 10) -> tuple[SearchFn, dict[str, Any]]:
    """(search function, settings it ran with) for a configuration name."""
    pipeline = pipeline_for(name, kbase, k)
    return pipeline.search, pipeline.settings


def _generative(kbase: KnowledgeBase, k: int) -> Pipeline:
    from kb.answer import answer
    from kb.llm import LLMUnavailable, get_llm

    llm_settings = kbase.settings.llm
    if llm_settings.backend == "none":
        raise Unavailable("no language model configured (set KB_LLM=openai with KB_LLM_URL and "
                          "KB_LLM_MODEL, or KB_LLM=local)")
    try:
        get_llm(llm_settings, kbase.settings.data_dir)
    except LLMUnavailable as exc:
        raise Unavailable(str(exc)) from exc
    full = pipeline_for("full", kbase, k)

    def run(question: str) -> dict[str, Any]:
        return answer(question, kbase, mode="generative").as_dict()

    settings = run_settings(kbase, retrieval=dataclasses.asdict(FULL), k=k,
                            answer_mode="generative")
    return Pipeline("generative", full.search, run, settings, DESCRIPTIONS["generative"])


def _naive(kbase: KnowledgeBase, k: int) -> Pipeline:
    from evals.naive import naive_config

    max_words = kbase.settings.answer.max_words
    corpus = Path(kbase.settings.corpus_dir)
    files = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                  for p in sorted(corpus.glob("*.txt")))
    try:
        search = _naive_search(str(corpus), k, files)
    except FileNotFoundError as exc:  # it reads the seed .txt files of the corpus directory
        raise Unavailable(str(exc)) from exc
    settings = {**naive_config(k), "answer": "leading sentences of the top passage",
                "max_words": max_words}
    return Pipeline("naive", search, naive_answer_fn(search, max_words), settings,
                    DESCRIPTIONS["naive"])


@lru_cache(maxsize=2)
def _naive_search(corpus: str, k: int, files: tuple[tuple[str, int, int], ...]) -> SearchFn:
    """The naive index, built once per corpus state (`files`: name, mtime, size of each seed),
    so repeated runs in the app do not re-embed the corpus."""
    from evals.naive import build_naive

    return build_naive(corpus, k=k)


def naive_answer_fn(search: SearchFn, max_words: int = 120) -> AnswerFn:
    """The naive baseline's answer in the `kb ask --json` shape: the top passage's leading
    sentences (whole sentences, until `max_words` is reached), each cited [1] to that passage."""
    from ingest.sentences import split_sentences

    def run(question: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        passages = list(search(question))
        t1 = time.perf_counter()
        out: dict[str, Any] = {"question": question, "mode": "naive", "evidence": None,
                               "abstained": not passages, "sentences": [], "citations": []}
        if passages:
            top: Mapping[str, Any] = passages[0]
            text = str(top["text"])
            chosen: list[str] = []
            words = quote_end = 0
            for start, end in split_sentences(text):
                sentence = " ".join(text[start:end].split())
                if not sentence:
                    continue
                chosen.append(sentence)
                quote_end = end
                words += len(sentence.split())
                if words >= max_words:
                    break
            quote = text[:quote_end]
            out["sentences"] = [{"text": s, "citations": [1], "supported": True} for s in chosen]
            out["citations"] = [{"n": 1, "chunk_id": top["chunk_id"], "source": top["source"],
                                 "title": top["source"], "section": "", "page": None,
                                 "quote": quote, "passage": text}]
            out["answer"] = " ".join(f"{s} [1]" for s in chosen) + f"\n\n[1] {top['source']}"
        else:
            out["answer"] = "No passage found."
        t2 = time.perf_counter()
        out["timings_ms"] = {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000,
                             "total": (t2 - t0) * 1000}
        return out

    return run
