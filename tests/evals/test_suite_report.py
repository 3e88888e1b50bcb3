"""A whole eval run on a small knowledge base (fake embedders), and the reports written from it:
side-by-side runs with settings hashes, skipped configurations, malformed gold lines, the naive
answer, the judge-calibration section, and a self-contained, escaped HTML report."""

from __future__ import annotations

import copy
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from evals.configs import Pipeline, Unavailable, naive_answer_fn, pipeline_for
from evals.gold import load_gold
from evals.report import render_html, render_markdown, side_by_side, write_reports
from evals.suite import question_rows, run_suite, summary
from kb.index import KnowledgeBase
from tests.evals.gold_cases import write_gold

CALIBRATION = {"n": 120, "positives": 80, "default": "lexical",
               "judges": {"lexical": {"accuracy": 0.9, "kappa": 0.78, "precision": 0.95,
                                      "recall": 0.88},
                          "embedding <b>": {"accuracy": 0.8, "kappa": 0.6, "precision": 0.85,
                                            "recall": 0.9}}}


def factory_with_skip(kbase: KnowledgeBase):  # type: ignore[no-untyped-def]
    def build(name: str) -> Pipeline:
        if name == "generative":
            raise Unavailable("no language model configured")
        return pipeline_for(name, kbase)

    return build


@pytest.fixture(scope="module")
def suite(seed_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tiny_gold = write_gold(tmp_path_factory.mktemp("gold") / "tiny.jsonl")
    items, errors = load_gold([tiny_gold])
    assert not errors
    seen: list[str] = []

    def track(iterable, desc, total):  # type: ignore[no-untyped-def]
        seen.append(f"{desc} {total}")
        return iterable

    out = run_suite(items, seed_kb, ["bm25", "full", "generative"], progress=track,
                    gold_files=[str(tiny_gold)], labels_path=None,
                    factory=factory_with_skip(seed_kb))
    out["_progress"] = seen
    return out


def test_run_suite_scores_each_configuration_side_by_side(suite: dict[str, Any]) -> None:
    runs = {r["name"]: r for r in suite["runs"]}
    assert [r["name"] for r in suite["runs"]] == ["bm25", "full", "generative"]
    assert runs["generative"]["status"] == "skipped"
    assert runs["generative"]["reason"] == "no language model configured"
    bm25, full = runs["bm25"], runs["full"]
    # Different settings, different hashes; both recorded.
    assert bm25["config_hash"] and full["config_hash"]
    assert bm25["config_hash"] != full["config_hash"]
    assert full["retrieval"]["n"] == 3 and full["answers"]["n"] == 4
    assert full["retrieval"]["metrics"]["hit@5"] == 1.0  # the tiny corpus is easy
    assert full["answers"]["metrics"]["refusal_recall"] == 1.0  # Kenya
    assert set(full["answers"]["per_doc"]) >= {"seed000_glossary.txt", "hostile_notes.md"}
    assert suite["_progress"] == ["bm25: retrieval 3", "bm25: answers 4", "full: retrieval 3",
                                  "full: answers 4"]
    header, rows = side_by_side(suite)
    assert header[:3] == ["config", "settings hash", "hit@1"]
    assert rows[2][:2] == ["generative", "skipped"]
    assert rows[1][1] == full["config_hash"]


def test_question_rows_put_failures_first(suite: dict[str, Any]) -> None:
    full = copy.deepcopy(next(r for r in suite["runs"] if r["name"] == "full"))
    answers = {r["id"]: r for r in full["answers"]["per_question"]}
    answers["g2"]["problems"] = ["missing 1/2 facts"]  # make one failure to sort
    rows = question_rows(full)
    flags = [bool(r["problems"]) for r in rows]
    assert flags == sorted(flags, reverse=True) and flags[0]
    assert rows[0]["id"] == "g2"
    assert rows[0]["answer"]["id"] == "g2" and rows[0]["retrieval"]["id"] == "g2"


def test_reports_are_written_and_html_is_self_contained_and_escaped(
    suite: dict[str, Any], tmp_path: Path
) -> None:
    paths = write_reports(suite, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    assert (tmp_path / "out" / "metrics.png").read_bytes()[:4] == b"\x89PNG"

    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["summary"]["runs"][1]["answers"]["refusal_recall"] == 1.0
    assert data["runs"][1]["answers"]["per_question"][0]["id"] == "g1"

    html = paths["html"].read_text(encoding="utf-8")
    # Self-contained: no script, no external style sheet or image, plots inline.
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) == 3
    # The gold question and the corpus text that carry markup are shown, escaped.
    assert "&lt;script&gt;alert(&#39;gold&#39;)&lt;/script&gt;" in html
    assert "Field notes &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html  # a title
    assert "Malformed" not in html  # nothing malformed in this gold file

    md = paths["md"].read_text(encoding="utf-8")
    assert "| bm25 |" in md and "generative** skipped: no language model configured" in md
    assert "![Metrics per configuration](metrics.png)" in md
    assert "<script>" not in md  # angle brackets escaped in tables


def test_malformed_gold_lines_are_reported_and_the_rest_evaluated(
    seed_kb: KnowledgeBase, tmp_path: Path
) -> None:
    path = write_gold(tmp_path / "gold.jsonl", bad_line_after=1)
    items, errors = load_gold([path])
    assert errors == ["gold.jsonl line 2: missing field 'question'"]
    suite = run_suite(items, seed_kb, ["bm25"], parts=["retrieval"], gold_errors=errors,
                      labels_path=None)
    assert suite["gold"]["n"] == 4 and suite["runs"][0]["retrieval"]["n"] == 3
    assert suite["runs"][0]["answers"] is None
    html = render_html(suite, {})
    assert "gold.jsonl line 2: missing field &#39;question&#39;" in html
    assert "gold.jsonl line 2: missing field 'question'" in render_markdown(suite)


def test_judge_calibration_section_comes_from_evals_judge(
    seed_kb: KnowledgeBase, tiny_gold: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = tmp_path / "judge_labels.jsonl"
    labels.write_text('{"sentence": "x", "passage": "x", "supported": true}\n')
    received: list[Path | None] = []

    def calibrate(labels_path: Path | None = None) -> dict[str, Any]:
        received.append(labels_path)
        return CALIBRATION

    monkeypatch.setitem(sys.modules, "evals.judge", types.SimpleNamespace(calibrate=calibrate))
    items, _ = load_gold([tiny_gold])
    cache = tmp_path / "cache"
    suite = run_suite(items, seed_kb, ["bm25"], parts=["retrieval"], labels_path=labels,
                      cache_dir=cache)
    assert received == [labels]
    again = run_suite(items, seed_kb, ["bm25"], parts=["retrieval"], labels_path=labels,
                      cache_dir=cache)
    assert received == [labels] and again["judge"]["calibration"] == CALIBRATION  # cached
    labels.write_text('{"sentence": "y", "passage": "y", "supported": false}\n')
    run_suite(items, seed_kb, ["bm25"], parts=["retrieval"], labels_path=labels,
              cache_dir=cache)
    assert received == [labels, labels]  # new labels: calibrated again
    assert summary(suite)["judge"]["calibration"] == CALIBRATION
    html = render_html(suite, {})
    assert "Judge calibration" in html and "lexical (default)" in html
    assert "embedding &lt;b&gt;" in html and "0.780" in html
    assert "| lexical (default) | 0.900 | 0.780 | 0.950 | 0.880 |" in render_markdown(suite)

    no_labels = run_suite(items, seed_kb, ["bm25"], parts=["retrieval"],
                          labels_path=tmp_path / "missing.jsonl")
    assert no_labels["judge"]["calibration"] is None
    assert "Judge calibration" not in render_html(no_labels, {})


def test_unknown_configuration_is_an_error_before_anything_runs(
    seed_kb: KnowledgeBase, tiny_gold: Path
) -> None:
    items, _ = load_gold([tiny_gold])
    with pytest.raises(ValueError, match="unknown configuration"):
        run_suite(items, seed_kb, ["full", "bogus"], labels_path=None)


def test_naive_answer_is_the_top_passages_leading_sentences_cited_to_it() -> None:
    passage = ("Relocation moved 9.6 million people. It built new towns. Schools followed. "
               "Jobs came last.")

    def search(question: str) -> list[dict[str, Any]]:
        return [{"chunk_id": "n1", "source": "a.txt", "text": passage},
                {"chunk_id": "n2", "source": "b.txt", "text": "Another passage."}]

    result = naive_answer_fn(search, max_words=9)("How many were relocated?")
    assert [s["text"] for s in result["sentences"]] == [
        "Relocation moved 9.6 million people.", "It built new towns.",
    ]
    assert all(s["citations"] == [1] for s in result["sentences"])
    assert result["citations"][0]["passage"] == passage and not result["abstained"]
    quote = "Relocation moved 9.6 million people. It built new towns."
    assert result["citations"][0]["quote"] == quote
    assert set(result["timings_ms"]) == {"retrieve", "answer", "total"}
