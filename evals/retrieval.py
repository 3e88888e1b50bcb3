"""Retrieval evaluation: does the search put the gold evidence in its top k?

``evaluate_retrieval`` takes any ``search_fn(question) -> ranked passages`` so every
configuration (the naive LlamaIndex baseline here; kb's dense, bm25 and full pipelines through
``kb eval --retrieval``) is scored by the same code::

    >>> from evals.gold import load_gold
    >>> items, errors = load_gold("evals/gold/dev.jsonl")  # doctest: +SKIP
    >>> result = evaluate_retrieval(items, my_search, k=10, name="dense",
    ...                             config=settings.model_dump())  # doctest: +SKIP
    >>> result["metrics"]["hit@5"], result["latency_ms"]["p50"]  # doctest: +SKIP

A passage is relevant when ``evals.matching.matches`` says it holds one of the question's
evidence quotes. Only answerable questions are scored: an unanswerable one has no evidence, so
retrieval cannot be right or wrong on it (abstention is judged by the answer eval).

Run the naive baseline on the dev set: ``python -m evals.retrieval --naive``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ranx

from evals.gold import GoldItem, load_gold
from evals.matching import matches

# A passage is a mapping with at least "chunk_id", "source" (the seed's file name, as gold
# evidence "doc") and "text"; extra keys (score, section, ...) are ignored.
Passage = Mapping[str, Any]
SearchFn = Callable[[str], Sequence[Passage]]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GOLD = REPO_ROOT / "evals" / "gold" / "dev.jsonl"
DEFAULT_CORPUS = REPO_ROOT / "corpus"

# Synthetic qrels id standing for an evidence item no retrieved passage matched. It can never be
# retrieved, so it only raises the ideal (nDCG denominator, recall): without it a question whose
# top 10 holds one of its two evidence passages would look as good as one holding both.
_MISSING = "__missing_evidence_{}__"
TOP_SHOWN = 3  # passages kept per question for the report's failure table
TOP_TEXT_CHARS = 240


def evidence_docs(item: GoldItem) -> list[str]:
    """The documents of a question's gold evidence, sorted (its groups in per-doc breakdowns)."""
    return sorted({ev.doc for ev in item.evidence})


def config_hash(config: Mapping[str, Any] | None) -> str | None:
    """Short md5 of the settings a run used (paper-qa ``config_md5``), to compare runs honestly."""
    if config is None:
        return None
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.md5(blob).hexdigest()[:12]


def _metric_names(k: int) -> dict[str, str]:
    """Our metric name -> ranx metric name (ranx calls hit@k "hit_rate@k")."""
    names = {f"hit@{c}": f"hit_rate@{c}" for c in sorted({1, 5, k}) if c <= k}
    names[f"mrr@{k}"] = f"mrr@{k}"
    names[f"ndcg@{k}"] = f"ndcg@{k}"
    return names


def _percentile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


def evaluate_retrieval(
    items: Iterable[GoldItem],
    search_fn: SearchFn,
    k: int = 10,
    name: str = "retrieval",
    config: Mapping[str, Any] | None = None,
    progress: Callable[[Iterable[GoldItem]], Iterable[GoldItem]] | None = None,
) -> dict[str, Any]:
    """Score ``search_fn`` on the answerable gold items.

    Returns ``{"name", "k", "n", "metrics", "per_type", "latency_ms": {"p50", "p95"},
    "per_question", "score", "individual_scores", "config_hash", "n_unanswerable_skipped"}``.
    ``metrics`` holds hit@1, hit@5, hit@k, all_evidence@k, mrr@k and ndcg@k; ``per_type`` the
    same per question type (type "non-english" gives the non-English numbers), ``per_doc`` per
    evidence document (a question whose evidence spans two documents counts in both); each
    ``per_question`` row carries its own metric values, latency and top passages. ``score`` is hit@5
    and ``individual_scores`` the per-question hit@5 (0/1), as every evaluator returns (STYLE.md).
    Latency is per search_fn call in milliseconds, measured after one warm-up call.
    ``progress`` wraps the iteration over questions (a tqdm-like progress bar).
    """
    items = list(items)
    scored = [item for item in items if item.answerable]
    if not scored:
        raise ValueError("no answerable gold items to evaluate")
    ids = [item.id for item in scored]
    if len(set(ids)) != len(ids):
        raise ValueError("gold item ids must be unique")

    search_fn(scored[0].question)  # warm-up: lazy model loads and first-call costs stay out

    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    per_question: list[dict[str, Any]] = []
    for item in progress(scored) if progress else scored:
        start = time.perf_counter()
        passages = list(search_fn(item.question))[:k]
        latencies.append((time.perf_counter() - start) * 1000)
        top: list[dict[str, Any]] = []

        ranking: dict[str, float] = {}
        relevant: dict[str, int] = {}
        matched: set[int] = set()
        hit_rank = None
        for passage in passages:
            chunk_id = str(passage["chunk_id"])
            if chunk_id in ranking:
                # A repeated chunk keeps its first rank and the ones below move up, as in ranx
                # (a run holds each id once), so hit_rank and ranx's MRR/nDCG agree.
                continue
            rank = len(ranking) + 1
            # Scores only have to decrease with rank; ranx re-sorts by them.
            ranking[chunk_id] = float(k - rank + 1)
            hits = {
                i
                for i, ev in enumerate(item.evidence)
                if matches(str(passage["source"]), str(passage["text"]), ev)
            }
            if hits:
                relevant[chunk_id] = 1
                matched |= hits
                if hit_rank is None:
                    hit_rank = rank
            if rank <= TOP_SHOWN:
                top.append({"rank": rank, "source": str(passage["source"]),
                            "match": bool(hits), "text": str(passage["text"])[:TOP_TEXT_CHARS]})
        for i in range(len(item.evidence)):
            if i not in matched:
                relevant[_MISSING.format(i)] = 1
        qrels[item.id] = relevant
        run[item.id] = ranking
        per_question.append(
            {
                "id": item.id,
                "type": item.type,
                "question": item.question,
                "docs": evidence_docs(item),
                "hit_rank": hit_rank,
                "matched_evidence": len(matched),
                "evidence": len(item.evidence),
                "latency_ms": round(latencies[-1], 1),
                "top": top,
            }
        )

    names = _metric_names(k)
    ranx_run = ranx.Run.from_dict(run, name=name)
    with warnings.catch_warnings():
        # numba's "unsafe cast from uint64 to int64" inside ranx: harmless for our id counts.
        warnings.filterwarnings("ignore", message=".*unsafe cast.*")
        ranx.evaluate(ranx.Qrels.from_dict(qrels), ranx_run, list(names.values()))
    # ranx keeps per-query values in run.scores; per-type numbers need them.
    per_query: dict[str, dict[str, float]] = {
        ours: {qid: float(ranx_run.scores[theirs][qid]) for qid in ids}
        for ours, theirs in names.items()
    }
    # ranx has no "all evidence retrieved" metric (its recall counts relevant chunks, and several
    # chunks may match one quote), so all_evidence@k is computed directly from the matches.
    per_query[f"all_evidence@{k}"] = {
        row["id"]: float(row["matched_evidence"] == row["evidence"]) for row in per_question
    }

    # Cross-check the ranx plumbing against the ranks we saw ourselves.
    for row in per_question:
        for c in (c for c in (1, 5, k) if c <= k):
            expected = float(row["hit_rank"] is not None and row["hit_rank"] <= c)
            if per_query[f"hit@{c}"][row["id"]] != expected:
                raise RuntimeError(f"ranx hit@{c} disagrees with the matched ranks for {row['id']}")

    def mean(metric: str, qids: Sequence[str]) -> float:
        return round(sum(per_query[metric][q] for q in qids) / len(qids), 4)

    metric_order = [*list(names)[:-2], f"all_evidence@{k}", f"mrr@{k}", f"ndcg@{k}"]
    by_type: dict[str, list[str]] = defaultdict(list)
    by_doc: dict[str, list[str]] = defaultdict(list)
    for row in per_question:
        by_type[row["type"]].append(row["id"])
        for doc in row["docs"]:
            by_doc[doc].append(row["id"])
        row["metrics"] = {m: round(per_query[m][row["id"]], 4) for m in metric_order}

    score_key = f"hit@{min(5, k)}"
    return {
        "name": name,
        "k": k,
        "n": len(scored),
        "metrics": {m: mean(m, ids) for m in metric_order},
        "per_type": {
            t: {"n": len(qids), **{m: mean(m, qids) for m in metric_order}}
            for t, qids in sorted(by_type.items())
        },
        "per_doc": {
            d: {"n": len(qids), **{m: mean(m, qids) for m in metric_order}}
            for d, qids in sorted(by_doc.items())
        },
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "per_question": per_question,
        "score": mean(score_key, ids),
        "individual_scores": [int(per_query[score_key][q]) for q in ids],
        "config_hash": config_hash(config),
        "n_unanswerable_skipped": len(items) - len(scored),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from evals.report import format_table

    parser = argparse.ArgumentParser(prog="python -m evals.retrieval", description=__doc__)
    parser.add_argument(
        "--naive", action="store_true", help="evaluate the naive LlamaIndex baseline"
    )
    parser.add_argument(
        "--gold", type=Path, action="append", help=f"gold JSONL (default {DEFAULT_GOLD})"
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="seed files directory")
    parser.add_argument("-k", type=int, default=10, help="passages retrieved per question")
    args = parser.parse_args(argv)
    if not args.naive:
        parser.error(
            "nothing to run: pass --naive (kb's configurations run via `kb eval --retrieval`)"
        )

    # Models come from local files only; never let a library phone home mid-eval.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    items, errors = load_gold(args.gold or [DEFAULT_GOLD])
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)

    results = []
    if args.naive:
        from evals.naive import build_naive, naive_config

        search_fn = build_naive(args.corpus, k=args.k)
        results.append(
            evaluate_retrieval(
                items, search_fn, k=args.k, name="naive", config=naive_config(args.k)
            )
        )

    print(format_table(results))
    print()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
