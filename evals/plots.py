"""The report's plots as PNG bytes (matplotlib, Agg canvas: no display, safe in a server thread).

Figures are made with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``), never
pyplot, so nothing global is touched and the app can draw them from any request thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# (label, part, metric key template); "{k}" is the suite's k.
HEADLINE = (
    ("hit@5", "retrieval", "hit@5"),
    ("MRR@{k}", "retrieval", "mrr@{k}"),
    ("key facts", "answers", "key_fact_recall"),
    ("grounded facts", "answers", "grounded_fact_recall"),
    ("citation P", "answers", "citation_precision"),
    ("citation R", "answers", "citation_recall"),
    ("gold-citation P", "answers", "gold_citation_precision"),
    ("refusal F1", "answers", "refusal_f1"),
)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _ok_runs(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in runs if r["status"] == "ok"]


def _grouped_bars(ax: Any, labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
                  ) -> None:
    """Bars per label, one colour per series (configuration); missing values are left out."""
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ys = [np.nan if v is None else v for v in values]
        ax.bar(x + (i - (n - 1) / 2) * width, ys, width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)


def metric_bars(runs: Sequence[Mapping[str, Any]], k: int = 10) -> bytes | None:
    """Headline metrics, one bar per configuration."""
    ok = _ok_runs(runs)
    metrics = [(label.format(k=k), part, key.format(k=k)) for label, part, key in HEADLINE]
    metrics = [m for m in metrics if any(r.get(m[1]) for r in ok)]
    if not ok or not metrics:
        return None
    series = {r["name"]: [(r.get(part) or {}).get("metrics", {}).get(key)
                          for _, part, key in metrics] for r in ok}
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    _grouped_bars(ax, [m[0] for m in metrics], series)
    ax.set_title("Metrics per configuration")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _png(fig)


def type_breakdown(runs: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Retrieval hit@5 and key-fact recall per question type, one bar per configuration."""
    ok = _ok_runs(runs)
    panels = [(part, key, title) for part, key, title in (
        ("retrieval", "hit@5", "Retrieval hit@5 by question type"),
        ("answers", "key_fact_recall", "Key-fact recall by question type"),
    ) if any(r.get(part) for r in ok)]
    if not panels:
        return None
    fig = Figure(figsize=(10, 3.3 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (part, key, title) in zip(axes, panels, strict=True):
        types = sorted({t for r in ok if r.get(part) for t in r[part]["per_type"]})
        types = [t for t in types
                 if any((r.get(part) or {}).get("per_type", {}).get(t, {}).get(key) is not None
                        for r in ok)]
        series = {r["name"]: [(r.get(part) or {}).get("per_type", {}).get(t, {}).get(key)
                              for t in types] for r in ok}
        _grouped_bars(ax, types, series)
        ax.set_title(title)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return _png(fig)


def latency_distribution(runs: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Per-question latency per configuration: retrieval calls and whole answers (box plots)."""
    ok = _ok_runs(runs)
    panels = []
    for part, title in (("retrieval", "Retrieval latency per question (ms)"),
                        ("answers", "Answer latency per question, total (ms)")):
        data = {r["name"]: [q["latency_ms"] for q in r[part]["per_question"]]
                for r in ok if r.get(part) and r[part]["per_question"]}
        if data:
            panels.append((title, data))
    if not panels:
        return None
    fig = Figure(figsize=(10, 3.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.boxplot([[max(v, 0.01) for v in vs] for vs in data.values()],
                   orientation="horizontal", tick_labels=list(data.keys()))
        ax.set_xscale("log")
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def report_plots(suite: Mapping[str, Any]) -> dict[str, bytes]:
    """{file name: PNG bytes} of every plot the run has data for."""
    plots = {
        "metrics.png": metric_bars(suite["runs"], suite.get("k", 10)),
        "by_type.png": type_breakdown(suite["runs"]),
        "latency.png": latency_distribution(suite["runs"]),
    }
    return {name: png for name, png in plots.items() if png is not None}
