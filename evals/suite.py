"""One evaluation run: every configuration scored on retrieval and on answers, side by side.

`kb eval` and the app's Evaluate tab call ``run_suite``; evals/report.py writes what it returns
as report.json, report.md and report.html::

    >>> items, errors = load_gold(["evals/gold/dev.jsonl"])  # doctest: +SKIP
    >>> suite = run_suite(items, kbase, ["naive", "full"], gold_errors=errors)  # doctest: +SKIP
    >>> summary(suite)["runs"][1]["answers"]["key_fact_recall"]  # doctest: +SKIP

Each run records the md5 of the settings its results depend on (``config_hash``). A
configuration that cannot run here (generative without a model) is kept in the results as
skipped, with the reason.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import kb.embedder as embedder_module
import kb.verifier as verifier_module
from evals.answers import Judge, evaluate_answers
from evals.configs import DEFAULT_CONFIGS, KNOWN, Pipeline, Unavailable, pipeline_for
from evals.gold import GoldItem
from evals.retrieval import REPO_ROOT, evaluate_retrieval
from kb.index import KnowledgeBase
from kb.verifier import verify

T = TypeVar("T")
# A progress display: wraps an iterable, given a description and the number of items
# (tqdm(iterable, desc=, total=) and gradio's Progress.tqdm both fit).
Track = Callable[[Iterable[T], str, int], Iterable[T]]

PARTS = ("retrieval", "answers")
DEFAULT_LABELS = REPO_ROOT / "evals" / "judge_labels.jsonl"
DEFAULT_JUDGE = "kb.verifier.verify (numbers, years and names must occur in the cited passages; " \
    "content-word coverage >= 0.6)"


def run_suite(
    items: Sequence[GoldItem],
    kbase: KnowledgeBase,
    configs: Sequence[str] = DEFAULT_CONFIGS,
    parts: Sequence[str] = PARTS,
    k: int = 10,
    judge: Judge = verify,
    judge_name: str = DEFAULT_JUDGE,
    progress: Track[Any] | None = None,
    gold_files: Sequence[str | Path] = (),
    gold_errors: Sequence[str] = (),
    labels_path: Path | None = DEFAULT_LABELS,
    factory: Callable[[str], Pipeline] | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Evaluate each configuration on `items` (retrieval and/or answers, see `parts`).

    `factory` builds a configuration's Pipeline (default ``evals.configs.pipeline_for``);
    `labels_path` is the judge's hand labels (None or a missing file: no calibration section);
    `cache_dir` keeps the calibration between runs (see ``judge_calibration``).
    """
    unknown = [c for c in configs if c not in KNOWN and factory is None]
    if unknown:
        raise ValueError(f"unknown configuration(s) {', '.join(unknown)}; known: "
                         f"{', '.join(KNOWN)}")
    bad_parts = set(parts) - set(PARTS)
    if bad_parts or not parts:
        raise ValueError(f"parts must be among {PARTS}, got {list(parts)}")
    items = list(items)
    if not items:
        raise ValueError("no gold question to evaluate")
    build = factory or (lambda name: pipeline_for(name, kbase, k))
    t0 = time.perf_counter()
    load_before = _load_average()
    runs = [_run_one(name, build, items, parts, k, judge, progress) for name in configs]
    calibration, calibration_error = judge_calibration(labels_path, cache_dir)
    catalog = kbase.catalog
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "load_average": {"start": load_before, "end": _load_average()},
        "cpus": os.cpu_count(),
        "k": k,
        "parts": list(parts),
        "gold": {
            "files": [str(f) for f in gold_files], "n": len(items),
            "answerable": sum(i.answerable for i in items), "errors": list(gold_errors),
            "types": sorted({i.type for i in items}),
        },
        "index": {
            "documents": {d.source: d.title for d in catalog.documents.values()},
            "chunks": len(catalog.chunks),
        },
        "judge": {"name": judge_name, "calibration": calibration,
                  "calibration_error": calibration_error},
        "runs": runs,
    }


def _run_one(name: str, build: Callable[[str], Pipeline], items: list[GoldItem],
             parts: Sequence[str], k: int, judge: Judge, progress: Track[Any] | None,
             ) -> dict[str, Any]:
    t0 = time.perf_counter()
    run: dict[str, Any] = {"name": name, "status": "ok", "reason": None, "retrieval": None,
                           "answers": None}
    try:
        pipeline = build(name)
    except Unavailable as exc:
        return {**run, "status": "skipped", "reason": str(exc), "config_hash": None,
                "description": "", "settings": None, "wall_s": 0.0}
    run |= {"description": pipeline.description, "config_hash": pipeline.config_hash,
            "settings": pipeline.settings}

    def track(desc: str, n: int) -> Callable[[Iterable[GoldItem]], Iterable[GoldItem]] | None:
        if progress is None:
            return None
        return lambda it: progress(it, f"{name}: {desc}", n)

    answerable = [i for i in items if i.answerable]
    if "retrieval" in parts:
        if answerable:
            run["retrieval"] = evaluate_retrieval(
                items, pipeline.search, k=k, name=name, config=pipeline.settings,
                progress=track("retrieval", len(answerable)))
        else:
            run["reason"] = "retrieval not scored: no answerable question"
    if "answers" in parts:
        pipeline.answer(items[0].question)  # warm-up: latency is measured warm
        run["answers"] = evaluate_answers(
            items, pipeline.answer, name=name, config=pipeline.settings, judge=judge,
            progress=track("answers", len(items)))
    run["wall_s"] = round(time.perf_counter() - t0, 1)
    return run


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def judge_calibration(
    labels_path: Path | None, cache_dir: Path | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """(calibration, error): ``evals.judge.calibrate`` against the hand labels when the labels
    file exists; (None, None) when it does not.

    Calibrating embeds every labelled pair (minutes on 2 cores), and its result depends only on
    the labels and the judges' code, so with `cache_dir` it is kept there under a hash of those
    files and reused until one of them changes.
    """
    if labels_path is None or not Path(labels_path).is_file():
        return None, None
    try:
        judge = importlib.import_module("evals.judge")
    except ImportError as exc:
        return None, f"evals.judge is not available: {exc}"
    cached = None
    if cache_dir is not None:
        cached = calibration_cache(Path(labels_path), Path(cache_dir), judge)
        if cached.is_file():
            return json.loads(cached.read_text(encoding="utf-8")), None
    try:
        result = judge.calibrate(Path(labels_path))
    except Exception as exc:  # noqa: BLE001 - a broken calibration must not lose the eval
        return None, f"calibration failed: {type(exc).__name__}: {exc}"
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, default=str), encoding="utf-8")
        tmp.replace(cached)
    return result, None


def calibration_cache(labels_path: Path, cache_dir: Path, judge: Any = None) -> Path:
    """Where a calibration is kept: named by the md5 of the labels and of the judges' code."""
    judge = judge or importlib.import_module("evals.judge")
    digest = hashlib.md5(labels_path.read_bytes())
    sources = [getattr(judge, "__file__", None), verifier_module.__file__, embedder_module.__file__]
    for source in sources:
        if source and Path(source).is_file():
            digest.update(Path(source).read_bytes())
    return cache_dir / f"calibration-{digest.hexdigest()[:12]}.json"


def retrieval_problems(row: Mapping[str, Any], k: int) -> list[str]:
    if row["hit_rank"] is None:
        return [f"no gold evidence in the top {k}"]
    out = []
    if row["hit_rank"] > 5:
        out.append(f"first gold evidence at rank {row['hit_rank']}")
    if row["matched_evidence"] < row["evidence"]:
        out.append(f"{row['matched_evidence']}/{row['evidence']} gold passages in the top {k}")
    return out


def question_rows(run: Mapping[str, Any], k: int = 10) -> list[dict[str, Any]]:
    """One row per question of a run, retrieval and answer merged, failures first.

    Each row has ``id, type, question, problems`` plus ``retrieval`` (hit rank, top passages)
    and ``answer`` (the answer eval's row: text, verdicts, citations), either may be None.
    """
    rows: dict[str, dict[str, Any]] = {}
    order: list[str] = []

    def row_for(r: Mapping[str, Any]) -> dict[str, Any]:
        if r["id"] not in rows:
            order.append(r["id"])
            rows[r["id"]] = {"id": r["id"], "type": r["type"], "question": r["question"],
                             "docs": r["docs"], "problems": [], "retrieval": None,
                             "answer": None}
        return rows[r["id"]]

    for r in (run.get("answers") or {}).get("per_question", []):
        row = row_for(r)
        row["answer"] = r
        row["problems"] += r["problems"]
    for r in (run.get("retrieval") or {}).get("per_question", []):
        row = row_for(r)
        row["retrieval"] = r
        row["problems"] += retrieval_problems(r, k)
    return sorted((rows[i] for i in order), key=lambda r: not r["problems"])


def failure_count(run: Mapping[str, Any], k: int = 10) -> int:
    return sum(bool(r["problems"]) for r in question_rows(run, k))


def summary(suite: Mapping[str, Any]) -> dict[str, Any]:
    """The run without its per-question rows: what `kb eval --json` prints."""
    runs = []
    for run in suite["runs"]:
        retrieval, answers = run.get("retrieval"), run.get("answers")
        runs.append({
            "name": run["name"], "status": run["status"], "reason": run["reason"],
            "config_hash": run.get("config_hash"), "wall_s": run.get("wall_s"),
            "retrieval": retrieval["metrics"] if retrieval else None,
            "retrieval_latency_ms": retrieval["latency_ms"] if retrieval else None,
            "answers": answers["metrics"] if answers else None,
            "answer_latency_ms": answers["latency_ms_by_stage"] if answers else None,
            "failures": failure_count(run, suite["k"]) if run["status"] == "ok" else None,
        })
    keys = ("created", "wall_s", "load_average", "cpus", "k", "parts", "gold", "judge")
    return {**{key: suite[key] for key in keys}, "runs": runs}
