"""End-to-end answer evaluation on gold sets: facts, citations, abstention, latency.

``evaluate_answers`` takes any ``answer_fn(question) -> dict`` in the ``kb ask --json`` shape, so
the extractive engine, the generative mode, the naive baseline, or the JSON lines of
``kb ask --batch --json`` read back from a file are all scored by the same code::

    >>> items, _ = load_gold("evals/gold/dev.jsonl")  # doctest: +SKIP
    >>> result = evaluate_answers(items, lambda q: answer(q, kbase).as_dict())  # doctest: +SKIP
    >>> result["metrics"]["key_fact_recall"], result["latency_ms"]["p95"]  # doctest: +SKIP

Metrics (formulas in evals/README.md):
- key_fact_recall: over answerable questions, the mean share of key facts the answer text holds
  (the fact or one of its " | " alternatives, case-insensitive, whitespace collapsed); an
  abstention scores 0. all_facts_rate: share of answerable questions with every fact.
- grounded_fact_recall: like key_fact_recall, but a fact counts only when it sits in an answer
  sentence one of whose cited passages matches the fact's gold quote (``evals.matching``).
- citation_recall (ALCE): share of answer sentences whose cited passages together support them.
- citation_precision (ALCE): of all (sentence, citation) pairs, the share where the citation is
  not irrelevant: the sentence is supported by its citations together, and the citation supports
  it alone or is needed (without it the other citations do not support the sentence).
- gold_citation_precision (strict): of the passages cited in answers to answerable questions,
  the share that match one of the question's gold evidence quotes.
- refusal_recall / refusal_precision / refusal_f1, answered_recall.
- latency p50/p95 of every stage of ``timings_ms`` (retrieve, answer, total, ...).
Every metric is also given per question type (``per_type``) and per evidence document
(``per_doc``). Support is decided by a judge: ``kb.verifier.verify`` unless another is passed.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.gold import ALTERNATIVE_SEPARATOR, Evidence, GoldItem
from evals.matching import matches, normalise
from evals.retrieval import config_hash, evidence_docs
from kb.verifier import verify

AnswerFn = Callable[[str], Mapping[str, Any]]
# A judge: (sentence, passages) -> bool, or a verdict with `.supported` (and `.reasons`).
Judge = Callable[[str, Sequence[str]], Any]

# Bars the issue sets for the dev set (extractive mode).
BARS = {
    "citation_precision": 0.95, "citation_recall": 0.95, "key_fact_recall": 0.75,
    "refusal_recall": 0.85, "answered_recall": 0.95,
}
P95_BAR_MS = 500.0
METRICS = (
    "key_fact_recall", "all_facts_rate", "grounded_fact_recall", "citation_precision",
    "citation_recall", "gold_citation_precision", "refusal_recall", "refusal_precision",
    "refusal_f1", "answered_recall",
)
NO_DOC = "(no evidence)"


def _norm(text: str) -> str:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text).strip().lower()


def fact_found(fact: str, answer_text: str) -> bool:
    """Is a key fact (or one of its " | " alternatives) in the answer text?"""
    text = _norm(answer_text)
    return any(_norm(alt) in text for alt in fact.split(ALTERNATIVE_SEPARATOR) if alt.strip())


def _verdict(judge: Judge, sentence: str, passages: Sequence[str]) -> tuple[bool, list[str]]:
    if not passages:
        return False, ["no valid citation"]
    verdict = judge(sentence, passages)
    if isinstance(verdict, bool | np.bool_):
        return bool(verdict), []
    return bool(verdict.supported), list(getattr(verdict, "reasons", None) or [])


def judge_sentences(result: Mapping[str, Any], judge: Judge = verify) -> list[dict[str, Any]]:
    """ALCE verdicts for each answer sentence: ``{"text", "citations", "supported", "reasons",
    "precise": [bool per citation]}``.

    A sentence is supported when its valid cited passages together support it (recall). A
    citation is precise when the sentence is supported and the citation either supports it
    alone or is needed: without it the remaining citations do not (ALCE, Gao et al. 2023). A
    citation id that is not among the answer's passages is never precise.
    """
    passages = {c["n"]: str(c.get("passage", "")) for c in result.get("citations", [])}
    out = []
    for sentence in result.get("sentences", []):
        text = str(sentence["text"])
        refs = list(dict.fromkeys(sentence.get("citations", [])))
        valid = [n for n in refs if n in passages]
        supported, reasons = _verdict(judge, text, [passages[n] for n in valid])
        precise = []
        for n in refs:
            if not supported or n not in passages:
                precise.append(False)
            elif len(refs) == 1 or _verdict(judge, text, [passages[n]])[0]:
                precise.append(True)
            else:
                rest = [passages[m] for m in valid if m != n]
                precise.append(not (rest and _verdict(judge, text, rest)[0]))
        out.append({"text": text, "citations": refs, "supported": supported,
                    "reasons": reasons, "precise": precise})
    return out


def judge_citations(result: Mapping[str, Any], judge: Judge = verify) -> tuple[int, int, int, int]:
    """(precise citations, citations, supported sentences, sentences) of one answer."""
    verdicts = judge_sentences(result, judge)
    return (sum(sum(v["precise"]) for v in verdicts), sum(len(v["precise"]) for v in verdicts),
            sum(v["supported"] for v in verdicts), len(verdicts))


def gold_matches(citation: Mapping[str, Any], evidence: Iterable[Evidence]) -> bool:
    """Does a cited passage hold one of these gold quotes (the retrieval eval's match rule)?"""
    return any(matches(str(citation.get("source", "")), str(citation.get("passage", "")), ev)
               for ev in evidence)


def fact_evidence(fact: str, evidence: Sequence[Evidence]) -> list[Evidence]:
    """The gold quotes a key fact comes from: those holding one of its alternatives; all of the
    question's quotes when the fact is a paraphrase found in none."""
    alts = [normalise(a) for a in fact.split(ALTERNATIVE_SEPARATOR) if normalise(a)]
    own = [ev for ev in evidence if any(a in normalise(ev.quote) for a in alts)]
    return own or list(evidence)


def grounded_facts(item: GoldItem, result: Mapping[str, Any]) -> list[bool]:
    """Per key fact: is it in an answer sentence whose citation matches the fact's gold quote?"""
    cites = {c["n"]: c for c in result.get("citations", [])}
    sentences = result.get("sentences", [])
    out = []
    for fact in item.key_facts:
        own = fact_evidence(fact, item.evidence)
        out.append(any(
            fact_found(fact, str(s["text"]))
            and any(n in cites and gold_matches(cites[n], own) for n in s.get("citations", []))
            for s in sentences
        ))
    return out


def score_answer(
    item: GoldItem, result: Mapping[str, Any], judge: Judge = verify
) -> dict[str, Any]:
    """One per-question row: the answer, its citations, every verdict and the problems found."""
    abstained = bool(result.get("abstained"))
    text = str(result.get("answer", ""))
    facts = [fact_found(f, text) for f in item.key_facts]
    grounded = [False] * len(facts) if abstained else grounded_facts(item, result)
    verdicts = [] if abstained else judge_sentences(result, judge)
    used = {n for v in verdicts for n in v["citations"]}
    citations = []
    for c in result.get("citations", []):
        citations.append({
            "n": c["n"], "source": c.get("source"), "title": c.get("title"),
            "section": c.get("section"), "page": c.get("page"), "quote": c.get("quote", ""),
            "gold_match": bool(item.evidence) and gold_matches(c, item.evidence),
            "used": c["n"] in used,
        })
    gold_cited = [c for c in citations if c["used"]] if item.answerable and not abstained else []
    timings = {k: float(v) for k, v in (result.get("timings_ms") or {}).items()}
    row = {
        "id": item.id, "type": item.type, "question": item.question,
        "answerable": item.answerable, "docs": evidence_docs(item),
        "answer": text, "mode": result.get("mode"), "abstained": abstained,
        "evidence": result.get("evidence"),
        "facts_found": sum(facts), "facts": len(facts), "facts_grounded": sum(grounded),
        "missing_facts": [f for f, ok in zip(item.key_facts, facts, strict=True) if not ok],
        "ungrounded_facts": [f for f, ok, g in zip(item.key_facts, facts, grounded, strict=True)
                             if ok and not g],
        "citations_precise": sum(sum(v["precise"]) for v in verdicts),
        "citations": sum(len(v["precise"]) for v in verdicts),
        "sentences_supported": sum(v["supported"] for v in verdicts),
        "sentences": len(verdicts),
        "gold_citations_matched": sum(c["gold_match"] for c in gold_cited),
        "gold_citations": len(gold_cited),
        "latency_ms": round(timings.get("total", 0.0), 1),
        "timings_ms": {k: round(v, 1) for k, v in timings.items()},
        "verdicts": verdicts, "cited": citations,
    }
    row["problems"] = answer_problems(row)
    return row


def answer_problems(row: Mapping[str, Any]) -> list[str]:
    """What went wrong with one answer, worst first (empty: nothing)."""
    out = []
    if row["answerable"] and row["abstained"]:
        out.append("abstained on an answerable question")
    if not row["answerable"] and not row["abstained"]:
        out.append("answered an unanswerable question")
    if row["missing_facts"] and not row["abstained"]:
        out.append(f"missing {len(row['missing_facts'])}/{row['facts']} facts")
    if row["sentences_supported"] < row["sentences"]:
        out.append(f"{row['sentences'] - row['sentences_supported']}/{row['sentences']} "
                   "sentences unsupported by their citations")
    if row["citations_precise"] < row["citations"]:
        out.append(f"{row['citations'] - row['citations_precise']}/{row['citations']} "
                   "citations imprecise")
    if row["gold_citations"] and not row["gold_citations_matched"]:
        out.append("no cited passage holds a gold quote")
    return out


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _fact_score(row: Mapping[str, Any], key: str = "facts_found") -> float:
    if not row["facts"]:
        return 0.0 if row["abstained"] else 1.0
    return 0.0 if row["abstained"] else row[key] / row["facts"]


def answer_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Every answer metric over a set of per-question rows (None where undefined: e.g. refusal
    precision when nothing was abstained on)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["abstained"]]
    abstained = [r for r in rows if r["abstained"]]
    recall = _ratio(sum(r["abstained"] for r in unanswerable), len(unanswerable))
    precision = _ratio(sum(not r["answerable"] for r in abstained), len(abstained))
    if recall is None:
        f1 = None
    elif not precision or not recall:  # no abstention at all counts as precision 0
        f1 = 0.0
    else:
        f1 = round(2 * precision * recall / (precision + recall), 4)
    return {
        "key_fact_recall": _ratio(sum(_fact_score(r) for r in answerable), len(answerable)),
        "all_facts_rate": _ratio(sum(_fact_score(r) == 1.0 for r in answerable), len(answerable)),
        "grounded_fact_recall": _ratio(sum(_fact_score(r, "facts_grounded") for r in answerable),
                                       len(answerable)),
        "citation_precision": _ratio(sum(r["citations_precise"] for r in answered),
                                     sum(r["citations"] for r in answered)),
        "citation_recall": _ratio(sum(r["sentences_supported"] for r in answered),
                                  sum(r["sentences"] for r in answered)),
        "gold_citation_precision": _ratio(sum(r["gold_citations_matched"] for r in answered),
                                          sum(r["gold_citations"] for r in answered)),
        "refusal_recall": recall,
        "refusal_precision": precision,
        "refusal_f1": f1,
        "answered_recall": _ratio(sum(not r["abstained"] for r in answerable), len(answerable)),
    }


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def latency_by_stage(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """p50/p95 in ms of every stage the answers timed (``timings_ms``), "total" last."""
    stages: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        for stage, ms in r["timings_ms"].items():
            stages[stage].append(ms)
    order = sorted(stages, key=lambda s: (s == "total", s))
    return {s: {"p50": _percentile(stages[s], 50), "p95": _percentile(stages[s], 95)}
            for s in order}


def grouped_metrics(
    rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Iterable[str]]
) -> dict[str, dict[str, Any]]:
    """``answer_metrics`` per group; a row may belong to several groups (documents)."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        for g in key(r):
            groups[g].append(r)
    return {g: {"n": len(rs), **answer_metrics(rs)} for g, rs in sorted(groups.items())}


def evaluate_answers(
    items: Iterable[GoldItem],
    answer_fn: AnswerFn,
    name: str = "extractive",
    config: Mapping[str, Any] | None = None,
    judge: Judge = verify,
    progress: Callable[[Iterable[GoldItem]], Iterable[GoldItem]] | None = None,
) -> dict[str, Any]:
    """Score `answer_fn` on gold items (see the module docstring for the metrics).

    Returns ``{"name", "n", "metrics", "per_type", "per_doc", "latency_ms": {"p50", "p95"}
    (total), "latency_ms_by_stage", "abstention", "per_question", "score", "individual_scores",
    "config_hash"}``; ``score`` is key-fact recall, ``individual_scores`` its per-question values.
    """
    items = list(items)
    rows = [score_answer(item, answer_fn(item.question), judge)
            for item in (progress(items) if progress else items)]
    metrics = answer_metrics(rows)
    by_stage = latency_by_stage(rows)
    return {
        "name": name,
        "n": len(rows),
        "metrics": metrics,
        "per_type": grouped_metrics(rows, lambda r: [r["type"]]),
        "per_doc": grouped_metrics(rows, lambda r: r["docs"] or [NO_DOC]),
        "latency_ms": by_stage.get("total", {"p50": None, "p95": None}),
        "latency_ms_by_stage": by_stage,
        "abstention": abstention_distribution(rows),
        "per_question": rows,
        "score": metrics["key_fact_recall"],
        "individual_scores": [_fact_score(r) for r in rows if r["answerable"]],
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
    header = ["config", "n", "key-fact recall", "grounded fact recall", "citation precision",
              "citation recall", "gold-citation precision", "refusal recall",
              "refusal precision", "answered recall", "p50 ms", "p95 ms"]
    keys = ["key_fact_recall", "grounded_fact_recall", "citation_precision", "citation_recall",
            "gold_citation_precision", "refusal_recall", "refusal_precision", "answered_recall"]
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
    """One line per question with a problem (wrong abstention, missing fact, bad citation)."""
    lines = []
    for r in result["per_question"]:
        if r["problems"]:
            status = "ABSTAINED" if r["abstained"] else "answered"
            lines.append(f"{r['id']} {r['type']:<28} {status:<9} evidence={r['evidence']} "
                         f"{'; '.join(r['problems'])} missing={r['missing_facts']}")
    return "\n".join(lines[:limit])


def load_answers(path: Path) -> dict[str, dict[str, Any]]:
    """Answers from `kb ask --batch --json` output, by id (to score a saved run)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out[str(obj["id"])] = obj
    return out
