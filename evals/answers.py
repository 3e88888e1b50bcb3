"""End-to-end answer evaluation on gold sets: facts, citations, abstention, latency.

``evaluate_answers`` takes any ``answer_fn(question) -> dict`` in the ``kb ask --json`` shape, so
the extractive engine, a later generative mode, or the JSON lines of ``kb ask --batch --json``
read back from a file are all scored by the same code::

    >>> items, _ = load_gold("evals/gold/dev.jsonl")  # doctest: +SKIP
    >>> result = evaluate_answers(items, lambda q: answer(q, kbase).as_dict())  # doctest: +SKIP
    >>> result["metrics"]["key_fact_recall"], result["latency_ms"]["p95"]  # doctest: +SKIP

Metrics:
- key_fact_recall: over answerable questions, the share of key facts of which the answer text
  contains the fact or one of its " | " alternatives (case-insensitive, whitespace collapsed);
  an abstention scores 0.
- citation_precision (ALCE): of all (sentence, cited passage) pairs, the share where that passage
  alone supports the sentence, with `kb.verifier.verify` as the judge (answered questions).
- citation_recall: the share of answer sentences whose cited passages together support them.
- refusal_recall / refusal_precision: abstentions on unanswerable questions; answered_recall:
  answerable questions that got an answer.
- latency p50/p95 of `timings_ms.total`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.gold import GoldItem
from evals.retrieval import config_hash
from kb.verifier import verify

AnswerFn = Callable[[str], Mapping[str, Any]]

# Bars the issue sets for the dev set (extractive mode).
BARS = {
    "citation_precision": 0.95, "citation_recall": 0.95, "key_fact_recall": 0.75,
    "refusal_recall": 0.85, "answered_recall": 0.95,
}
P95_BAR_MS = 500.0


def _norm(text: str) -> str:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip().lower()


def fact_found(fact: str, answer_text: str) -> bool:
    """Is a key fact (or one of its " | " alternatives) in the answer text?"""
    text = _norm(answer_text)
    return any(_norm(alt) in text for alt in fact.split(" | ") if alt.strip())


def judge_citations(result: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(supporting citations, citations, supported sentences, sentences) of one answer."""
    passages = {c["n"]: c["passage"] for c in result.get("citations", [])}
    good = total = supported = n_sentences = 0
    for sentence in result.get("sentences", []):
        n_sentences += 1
        cited = [n for n in sentence.get("citations", []) if n in passages]
        for n in sentence.get("citations", []):
            total += 1
            if n in passages and verify(sentence["text"], [passages[n]]).supported:
                good += 1
        if cited and verify(sentence["text"], [passages[n] for n in cited]).supported:
            supported += 1
    return good, total, supported, n_sentences


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def evaluate_answers(
    items: Iterable[GoldItem],
    answer_fn: AnswerFn,
    name: str = "extractive",
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score `answer_fn` on gold items (see the module docstring for the metrics)."""
    rows: list[dict[str, Any]] = []
    latencies: list[float] = []
    cit_good = cit_total = sent_good = sent_total = 0
    for item in items:
        result = answer_fn(item.question)
        abstained = bool(result.get("abstained"))
        text = str(result.get("answer", ""))
        facts = [fact_found(f, text) for f in item.key_facts]
        good, total, supported, n_sent = judge_citations(result) if not abstained else (0,) * 4
        cit_good, cit_total = cit_good + good, cit_total + total
        sent_good, sent_total = sent_good + supported, sent_total + n_sent
        latency = float(result.get("timings_ms", {}).get("total", 0.0))
        latencies.append(latency)
        rows.append({
            "id": item.id, "type": item.type, "answerable": item.answerable,
            "abstained": abstained, "evidence": result.get("evidence"),
            "facts_found": sum(facts), "facts": len(facts),
            "missing_facts": [f for f, ok in zip(item.key_facts, facts, strict=True) if not ok],
            "citations_supporting": good, "citations": total,
            "sentences_supported": supported, "sentences": n_sent, "latency_ms": round(latency, 1),
        })
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    abstained = [r for r in rows if r["abstained"]]

    def ratio(num: float, den: float) -> float | None:
        return round(num / den, 4) if den else None

    fact_scores = [
        (0.0 if r["abstained"] else r["facts_found"] / r["facts"]) if r["facts"] else 1.0
        for r in answerable
    ]
    metrics = {
        "key_fact_recall": ratio(sum(fact_scores), len(fact_scores)),
        "citation_precision": ratio(cit_good, cit_total),
        "citation_recall": ratio(sent_good, sent_total),
        "refusal_recall": ratio(sum(r["abstained"] for r in unanswerable), len(unanswerable)),
        "refusal_precision": ratio(sum(not r["answerable"] for r in abstained), len(abstained)),
        "answered_recall": ratio(sum(not r["abstained"] for r in answerable), len(answerable)),
    }
    by_type: dict[str, list[float]] = defaultdict(list)
    for r, s in zip(answerable, fact_scores, strict=True):
        by_type[r["type"]].append(s)
    return {
        "name": name,
        "n": len(rows),
        "metrics": metrics,
        "key_fact_recall_by_type": {
            t: round(sum(v) / len(v), 3) for t, v in sorted(by_type.items())
        },
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "abstention": abstention_distribution(rows),
        "per_question": rows,
        "score": metrics["key_fact_recall"],
        "individual_scores": fact_scores,
        "config_hash": config_hash(config),
    }


def abstention_distribution(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The abstention signal (evidence) on answerable vs unanswerable questions, sorted."""
    def values(answerable: bool) -> list[float]:
        return sorted(
            round(float(r["evidence"]), 3) for r in rows
            if r["answerable"] == answerable and r.get("evidence") is not None
        )

    return {"answerable": values(True), "unanswerable": values(False)}


def format_answer_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table, one row per run, with the bar each metric must meet."""
    header = ["config", "n", "key-fact recall", "citation precision", "citation recall",
              "refusal recall", "refusal precision", "answered recall", "p50 ms", "p95 ms"]
    keys = ["key_fact_recall", "citation_precision", "citation_recall", "refusal_recall",
            "refusal_precision", "answered_recall"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    bar = ["bar", ""] + [f">= {BARS[k]}" if k in BARS else "" for k in keys]
    for result in results:
        m, lat = result["metrics"], result["latency_ms"]
        cells = [str(result["name"]), str(result["n"])]
        cells += ["–" if m[k] is None else f"{m[k]:.3f}" for k in keys]
        cells += [f"{lat['p50']}", f"{lat['p95']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| " + " | ".join([*bar, "", f"<= {P95_BAR_MS:.0f}"]) + " |")
    return "\n".join(lines)


def format_failures(result: Mapping[str, Any], limit: int = 40) -> str:
    """One line per question that missed a fact, abstained wrongly or answered wrongly."""
    lines = []
    for r in result["per_question"]:
        wrong_abstain = r["abstained"] == r["answerable"]
        if wrong_abstain or r["missing_facts"] or r["sentences_supported"] < r["sentences"]:
            status = "ABSTAINED" if r["abstained"] else "answered"
            lines.append(f"{r['id']} {r['type']:<28} {status:<9} evidence={r['evidence']} "
                         f"facts {r['facts_found']}/{r['facts']} missing={r['missing_facts']}")
    return "\n".join(lines[:limit])


def load_answers(path: Path) -> dict[str, dict[str, Any]]:
    """Answers from `kb ask --batch --json` output, by id (to score a saved run)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out[str(obj["id"])] = obj
    return out
