"""Markdown tables of evaluation results, one row per configuration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NON_ENGLISH = "non-english"


def _cell(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per ``evaluate_retrieval`` result.

    >>> format_table([]).splitlines()[0].split(" | ")[:4]
    ['| config', 'n', 'hit@1', 'hit@5']
    """
    header = [
        "config", "n", "hit@1", "hit@5", "hit@10", "all-evidence@10", "MRR@10", "nDCG@10",
        "non-English hit@5", "p50 ms", "p95 ms",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        k = result.get("k", 10)
        metrics = result["metrics"]
        non_english = result.get("per_type", {}).get(NON_ENGLISH, {})
        latency = result.get("latency_ms", {})
        row = [
            result["name"],
            str(result["n"]),
            _cell(metrics.get("hit@1")),
            _cell(metrics.get("hit@5")),
            _cell(metrics.get(f"hit@{k}")),
            _cell(metrics.get(f"all_evidence@{k}")),
            _cell(metrics.get(f"mrr@{k}")),
            _cell(metrics.get(f"ndcg@{k}")),
            _cell(non_english.get("hit@5")),
            _cell(latency.get("p50"), 1),
            _cell(latency.get("p95"), 1),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
