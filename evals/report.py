"""Evaluation reports: Markdown tables, and a run of ``evals.suite.run_suite`` written as
report.json (machines), report.md and report.html (people).

    >>> paths = write_reports(suite, Path("evals/reports/2025-01-01T120000"))  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['html', 'json', 'md']

report.html is self-contained: the plots are embedded as base64 PNG, the style sheet is inline,
there is no script and no external link, and every text that comes from the corpus, the gold set
or an answer is HTML-escaped (Jinja2 autoescaping). report.md refers to the plots as PNG files
written beside it.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from evals.answers import NO_DOC
from evals.plots import report_plots
from evals.suite import question_rows, summary

NON_ENGLISH = "non-english"
TEMPLATES = Path(__file__).resolve().parent / "templates"  # report.html.j2, table.html.j2
REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}

# (column label, part, metric key); "{k}" is the run's k.
RETRIEVAL_COLUMNS = (
    ("hit@1", "retrieval", "hit@1"),
    ("hit@5", "retrieval", "hit@5"),
    ("all-evidence@{k}", "retrieval", "all_evidence@{k}"),
    ("MRR@{k}", "retrieval", "mrr@{k}"),
    ("nDCG@{k}", "retrieval", "ndcg@{k}"),
)
ANSWER_COLUMNS = (
    ("key-fact recall", "answers", "key_fact_recall"),
    ("all facts", "answers", "all_facts_rate"),
    ("grounded facts", "answers", "grounded_fact_recall"),
    ("citation P", "answers", "citation_precision"),
    ("citation R", "answers", "citation_recall"),
    ("gold-citation P", "answers", "gold_citation_precision"),
    ("refusal R", "answers", "refusal_recall"),
    ("refusal P", "answers", "refusal_precision"),
    ("refusal F1", "answers", "refusal_f1"),
    ("answered R", "answers", "answered_recall"),
)
DEFINITIONS = (
    ("hit@k", "share of answerable questions with a passage holding a gold quote in the top k"),
    ("all-evidence@k", "share of answerable questions with every gold quote in the top k"),
    ("MRR@k", "mean of 1/rank of the first passage holding a gold quote (0 if none in the top k)"),
    ("nDCG@k", "ranx nDCG@k, binary relevance; each unmatched gold quote counts as unretrieved"),
    ("key-fact recall", "mean share of a question's key facts found in its answer (abstention 0)"),
    ("all facts", "share of answerable questions whose answer holds every key fact"),
    ("grounded facts", "like key-fact recall, but the fact must sit in a sentence whose cited "
                       "passage holds the fact's gold quote"),
    ("citation P", "ALCE: share of (sentence, citation) pairs where the sentence is supported and "
                   "the citation supports it alone or is needed"),
    ("citation R", "ALCE: share of answer sentences supported by their citations together"),
    ("gold-citation P", "strict: share of cited passages (answerable questions) holding a gold "
                        "quote of the question"),
    ("refusal R / P / F1", "abstentions on unanswerable questions / unanswerable among "
                           "abstentions / their harmonic mean"),
    ("answered R", "share of answerable questions that got an answer"),
)


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


def _columns(suite: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    k = suite.get("k", 10)
    parts = suite.get("parts", ["retrieval", "answers"])
    return [(label.format(k=k), part, key.format(k=k))
            for label, part, key in (*RETRIEVAL_COLUMNS, *ANSWER_COLUMNS) if part in parts]


def _metric(run: Mapping[str, Any], part: str, key: str, group: str | None = None,
            name: str | None = None) -> Any:
    result = run.get(part)
    if not result:
        return None
    source = result["metrics"] if group is None else result.get(group, {}).get(name, {})
    return source.get(key)


def side_by_side(suite: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the one table comparing every configuration; a skipped one shows
    "skipped" (the reason is listed under the table)."""
    columns = _columns(suite)
    header = ["config", "settings hash", *(c[0] for c in columns),
              "search p95 ms", "answer p50 ms", "answer p95 ms", "failures"]
    rows = []
    for run in suite["runs"]:
        if run["status"] != "ok":
            rows.append([run["name"], "skipped", *["–"] * (len(header) - 2)])
            continue
        retrieval, answers = run.get("retrieval"), run.get("answers")
        rows.append([
            run["name"], str(run.get("config_hash") or "–"),
            *(_cell(_metric(run, part, key)) for _, part, key in columns),
            _cell(retrieval["latency_ms"]["p95"], 1) if retrieval else "–",
            _cell(answers["latency_ms"]["p50"], 1) if answers else "–",
            _cell(answers["latency_ms"]["p95"], 1) if answers else "–",
            str(sum(bool(r["problems"]) for r in question_rows(run, suite.get("k", 10)))),
        ])
    return header, rows


def breakdown(suite: Mapping[str, Any], run: Mapping[str, Any], group: str,
              ) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of every metric of one run per question type (group "per_type") or per
    evidence document ("per_doc")."""
    columns = _columns(suite)
    names: list[str] = []
    for part in ("retrieval", "answers"):
        for name in (run.get(part) or {}).get(group, {}):
            if name not in names:
                names.append(name)
    names.sort(key=lambda n: (n == NO_DOC, n))
    header = ["type" if group == "per_type" else "document", "questions", "answerable",
              *(c[0] for c in columns)]
    rows = []
    for name in names:
        answers = (run.get("answers") or {}).get(group, {}).get(name, {})
        retrieval = (run.get("retrieval") or {}).get(group, {}).get(name, {})
        rows.append([name, _cell(answers.get("n")), _cell(retrieval.get("n")),
                     *(_cell(_metric(run, part, key, group, name)) for _, part, key in columns)])
    return header, rows


def latency_table(suite: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): p50/p95 ms of the retrieval call and of every answer stage, per run."""
    stages: list[str] = []
    for run in suite["runs"]:
        for stage in ((run.get("answers") or {}).get("latency_ms_by_stage") or {}):
            if stage not in stages:
                stages.append(stage)
    stages.sort(key=lambda s: (s == "total", s))
    header = ["config", "search p50", "search p95",
              *(f"{s} p{q}" for s in stages for q in (50, 95))]
    rows = []
    for run in suite["runs"]:
        if run["status"] != "ok":
            continue
        lat = (run.get("retrieval") or {}).get("latency_ms") or {}
        by_stage = (run.get("answers") or {}).get("latency_ms_by_stage") or {}
        rows.append([run["name"], _cell(lat.get("p50"), 1), _cell(lat.get("p95"), 1),
                     *(_cell(by_stage.get(s, {}).get(f"p{q}"), 1)
                       for s in stages for q in (50, 95))])
    return header, rows


def calibration_table(calibration: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["judge", "accuracy", "kappa", "precision", "recall"]
    rows = []
    for name, m in calibration.get("judges", {}).items():
        label = f"{name} (default)" if name == calibration.get("default") else name
        rows.append([label, *(_cell(m.get(key)) for key in header[1:])])
    return header, rows


# -- Markdown ---------------------------------------------------------------------------------

def _md(text: Any, limit: int | None = None) -> str:
    """A table cell: one line, pipes and angle brackets escaped."""
    text = " ".join(str(text if text is not None else "").split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def answer_text(answer: Mapping[str, Any] | None, limit: int | None = 500) -> str:
    if answer is None:
        return "(not evaluated)"
    if answer["abstained"]:
        return "ABSTAINED: " + str(answer["answer"]).split("\n")[0]
    parts = []
    for v in answer["verdicts"]:
        marks = "".join(f"[{n}{'' if ok else '✗'}]" for n, ok in
                        zip(v["citations"], v["precise"], strict=True))
        parts.append(f"{v['text']} {marks}{'' if v['supported'] else ' (UNSUPPORTED)'}")
    text = " ".join(parts)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _citations_cell(answer: Mapping[str, Any] | None) -> str:
    if answer is None:
        return ""
    return "; ".join(
        f"[{c['n']}] {c['source']}{', p. ' + str(c['page']) if c.get('page') else ''}"
        f" gold {'✓' if c['gold_match'] else '✗'}" for c in answer["cited"] if c["used"])


def _retrieval_cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "–"
    return "miss" if row["hit_rank"] is None else f"rank {row['hit_rank']}"


def render_markdown(suite: Mapping[str, Any], plot_files: Sequence[str] = ()) -> str:
    """report.md: the same sections as the HTML report; plots as image links to PNG files."""
    gold = suite["gold"]
    load = suite.get("load_average") or {}
    out = [
        "# Evaluation report", "",
        f"- created {suite['created']}; wall time {suite['wall_s']} s on {suite.get('cpus')} "
        f"CPUs; load average at start {load.get('start')}, at end {load.get('end')}",
        f"- gold: {', '.join(gold['files']) or '(given in memory)'}: {gold['n']} questions, "
        f"{gold['answerable']} answerable",
        f"- judge: {suite['judge']['name']}",
        f"- index: {len(suite['index']['documents'])} documents, {suite['index']['chunks']} "
        "chunks",
        "",
    ]
    if gold["errors"]:
        out += ["**Malformed gold lines (skipped; the rest was evaluated):**", ""]
        out += [f"- {_md(e)}" for e in gold["errors"]] + [""]
    out += ["## Side by side", "", _md_table(*side_by_side(suite)), ""]
    out += [f"- **{_md(r['name'])}** skipped: {_md(r['reason'])}"
            for r in suite["runs"] if r["status"] != "ok"]
    out += [f"- **{_md(r['name'])}** ({r['config_hash']}): {_md(r['description'])}"
            for r in suite["runs"] if r["status"] == "ok"]
    out += ["", "Metrics:", ""] + [f"- **{name}**: {text}" for name, text in DEFINITIONS]
    if "metrics.png" in plot_files:
        out += ["", "![Metrics per configuration](metrics.png)"]
    out += _md_calibration(suite["judge"])
    out += ["", "## Per question type", ""]
    if "by_type.png" in plot_files:
        out += ["![Per question type](by_type.png)", ""]
    for run in suite["runs"]:
        if run["status"] == "ok":
            out += [f"### {_md(run['name'])}", "", _md_table(*breakdown(suite, run, "per_type")),
                    ""]
    out += ["## Per document", ""]
    out += [f"- {_md(source)}: {_md(title)}" for source, title in
            suite["index"]["documents"].items()] + [""]
    for run in suite["runs"]:
        if run["status"] == "ok":
            out += [f"### {_md(run['name'])}", "", _md_table(*breakdown(suite, run, "per_doc")),
                    ""]
    out += ["## Latency (ms, warm)", "", _md_table(*latency_table(suite)), ""]
    if "latency.png" in plot_files:
        out += ["![Latency distribution](latency.png)", ""]
    out += ["## Questions, failures first", "",
            "Answer sentences carry their citations; ✗ after a citation number: imprecise "
            "(the judge says it neither supports the sentence nor is needed); gold ✓/✗: the cited "
            "passage holds / does not hold a gold quote.", ""]
    for run in suite["runs"]:
        if run["status"] != "ok":
            continue
        rows = question_rows(run, suite.get("k", 10))
        table = [[r["id"], r["type"], "; ".join(r["problems"]) or "ok", _md(r["question"], 200),
                  answer_text(r["answer"]), _citations_cell(r["answer"]),
                  _retrieval_cell(r["retrieval"])] for r in rows]
        out += [f"### {_md(run['name'])}", "",
                _md_table(["id", "type", "problems", "question", "answer", "citations",
                           "retrieval"], table), ""]
    return "\n".join(out) + "\n"


def _md_calibration(judge: Mapping[str, Any]) -> list[str]:
    calibration = judge.get("calibration")
    if calibration:
        return ["", "## Judge calibration", "",
                f"Against {calibration['n']} hand-labelled (sentence, passage) pairs, "
                f"{calibration['positives']} supported; default judge: "
                f"{_md(calibration['default'])}.", "",
                _md_table(*calibration_table(calibration))]
    if judge.get("calibration_error"):
        return ["", "## Judge calibration", "", _md(judge["calibration_error"])]
    return []


# -- HTML -------------------------------------------------------------------------------------


_NUMBER = re.compile(r"^[–\d.]+$")


def _environment() -> Environment:
    # autoescape=True: every text from the corpus, the gold set or an answer is escaped.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.tests["number_like"] = lambda value: bool(_NUMBER.match(str(value)))
    return env


def render_html(suite: Mapping[str, Any], plots: Mapping[str, bytes] | None = None) -> str:
    """report.html, self-contained (see the module docstring)."""
    env = _environment()
    table_template = env.get_template("table.html.j2")

    def table(header_rows: tuple[list[str], list[list[str]]]) -> Any:
        header, rows = header_rows
        return Markup(table_template.render(header=header, rows=rows))

    k = suite.get("k", 10)
    ok = [r for r in suite["runs"] if r["status"] == "ok"]
    ok_runs = []
    for run in ok:
        rows = question_rows(run, k)
        ok_runs.append({"name": run["name"], "rows": rows,
                        "failures": sum(bool(r["problems"]) for r in rows)})
    calibration = suite["judge"].get("calibration")
    return env.get_template("report.html.j2").render(
        suite=suite, gold=suite["gold"], load=suite.get("load_average") or {}, k=k,
        table=table, side=side_by_side(suite), definitions=DEFINITIONS,
        calibration=calibration,
        calibration_rows=calibration_table(calibration) if calibration else None,
        by_type=[(r["name"], breakdown(suite, r, "per_type")) for r in ok],
        by_doc=[(r["name"], breakdown(suite, r, "per_doc")) for r in ok],
        latency=latency_table(suite), ok_runs=ok_runs,
        plots={name: base64.b64encode(png).decode("ascii")
               for name, png in (plots or {}).items()},
        settings_json={r["name"]: json.dumps(r.get("settings"), indent=1, sort_keys=True)
                       for r in suite["runs"]},
    )


def write_reports(suite: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md (+ its PNG plots) and report.html into `out_dir`
    (created if needed); returns {"json"|"md"|"html": path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = report_plots(suite)
    for name, png in plots.items():
        (out_dir / name).write_bytes(png)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    paths["json"].write_text(
        json.dumps({"summary": summary(suite), **suite}, ensure_ascii=False, indent=1,
                   default=str), encoding="utf-8")
    paths["md"].write_text(render_markdown(suite, list(plots)), encoding="utf-8")
    paths["html"].write_text(render_html(suite, plots), encoding="utf-8")
    return paths
