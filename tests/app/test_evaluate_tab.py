"""The Evaluate tab: its handler on the small knowledge base (fake embedders), the tab in the
page, and the launched app's /evaluate endpoint through gradio_client (an uploaded slice of the
dev set, reports downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.evaluate import DEV_SET, FAILURE_HEADERS, UPLOADED, Evaluator
from app.library import ReadWriteLock
from app.web import build_app
from evals.retrieval import DEFAULT_GOLD
from evals.suite import DEFAULT_LABELS, calibration_cache
from kb.index import KnowledgeBase
from tests.evals.gold_cases import write_gold

SEEDED_CALIBRATION = {"n": 2, "positives": 1, "default": "seeded-judge",
                      "judges": {"seeded-judge": {"accuracy": 1.0, "kappa": 1.0,
                                                  "precision": 1.0, "recall": 1.0}}}


@pytest.fixture
def evaluator(small_kb: KnowledgeBase, tmp_path: Path) -> Evaluator:
    exports = tmp_path / "exports"
    exports.mkdir()
    return Evaluator(small_kb, ReadWriteLock(), exports, labels=None)  # calibration: elsewhere


def test_run_on_an_uploaded_gold_file_shows_summary_failures_and_reports(
    evaluator: Evaluator, tmp_path: Path
) -> None:
    gold = write_gold(tmp_path / "mine.jsonl", bad_line_after=0)
    status, summary, failures, files = evaluator.run(
        UPLOADED, str(gold), ["bm25", "full", "generative"], ["retrieval", "answers"],
        progress=None)
    assert "**4 questions** from `mine.jsonl`" in status
    assert "generative** skipped" in status
    assert "1 malformed line(s) skipped" in status and "mine.jsonl line 1" in status
    assert summary["headers"][:2] == ["config", "settings hash"]
    assert [row[0] for row in summary["data"]] == ["bm25", "full", "generative"]
    assert failures["headers"] == FAILURE_HEADERS
    assert all(row[0] in ("bm25", "full") and row[3] for row in failures["data"])
    assert sorted(Path(f).name for f in files) == ["report.html", "report.json", "report.md"]
    assert all(Path(f).is_relative_to(evaluator.exports) for f in files)
    report = json.loads(Path(files[2]).read_text(encoding="utf-8"))
    assert report["gold"]["files"] == ["mine.jsonl"]


def test_choices_are_checked_before_running(evaluator: Evaluator, tmp_path: Path) -> None:
    assert evaluator.run(DEV_SET, None, [], ["answers"], progress=None)[0] == \
        "Choose at least one configuration."
    assert evaluator.run(DEV_SET, None, ["full"], [], progress=None)[0].startswith("Choose")
    assert "Upload a gold JSONL" in evaluator.run(UPLOADED, None, ["full"], ["answers"],
                                                  progress=None)[0]
    binary = tmp_path / "gold.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    status, summary, _, files = evaluator.run(UPLOADED, str(binary), ["full"], ["answers"],
                                              progress=None)
    assert status.startswith("Cannot read gold.jsonl") and summary is None and files is None
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"id": "x"}\n', encoding="utf-8")
    status = evaluator.run(UPLOADED, str(empty), ["full"], ["answers"], progress=None)[0]
    assert "No well-formed question" in status and "empty.jsonl line 1" in status


def test_the_page_has_the_evaluate_tab_next_to_the_others(small_kb: KnowledgeBase) -> None:
    demo = build_app(small_kb)
    labels = [c.get("props", {}).get("label") for c in demo.config["components"]]
    assert {"Ask", "Library", "Glossary", "Course pack", "Evaluate"} <= set(labels)
    endpoints = {d.get("api_name") for d in demo.config["dependencies"]}
    assert {"ask", "evaluate", "pack"} <= endpoints
    assert isinstance(demo.policykb.evaluator, Evaluator)  # type: ignore[attr-defined]


@pytest.mark.integration
@pytest.mark.slow
def test_evaluate_endpoint_runs_an_uploaded_slice_of_the_dev_set(
    live_app: str, real_kb: KnowledgeBase, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    # The judge's real calibration embeds 175 labelled pairs (minutes; evals.judge's own tests
    # cover it): seed the app's calibration cache so this test checks the wiring only.
    if DEFAULT_LABELS.is_file():
        cache = calibration_cache(DEFAULT_LABELS, real_kb.settings.data_dir / "eval-cache")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(SEEDED_CALIBRATION), encoding="utf-8")
    lines = DEFAULT_GOLD.read_text(encoding="utf-8").splitlines()
    unanswerable = next(line for line in lines if '"answerable": false' in line)
    gold = tmp_path / "slice.jsonl"
    gold.write_text("\n".join([*lines[:3], unanswerable, "{not json"]) + "\n", encoding="utf-8")
    client = Client(live_app, verbose=False)
    status, summary, failures, files = client.predict(
        UPLOADED, handle_file(str(gold)), ["bm25", "full"], ["retrieval", "answers"],
        api_name="/evaluate")
    assert "**4 questions** from `slice.jsonl`" in status and "slice.jsonl line 5" in status
    assert [row[0] for row in summary["data"]] == ["bm25", "full"]
    assert summary["headers"][0] == "config"
    names = sorted(Path(f).name for f in files)
    assert names == ["report.html", "report.json", "report.md"]
    html = Path(next(f for f in files if f.endswith(".html"))).read_text(encoding="utf-8")
    assert "Side by side" in html and "q001" in html
    if DEFAULT_LABELS.is_file():
        assert "Judge calibration" in html and "seeded-judge" in html
