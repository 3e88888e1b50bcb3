"""`kb eval` through click's CliRunner, on the small knowledge base (fake embedders): --out
writes the three reports, --json prints valid JSON, a malformed gold line is reported and the
rest evaluated, an unknown configuration is a usage error."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from app.cli import cli
from kb.index import KnowledgeBase
from tests.evals.gold_cases import write_gold


def invoke(kbase: KnowledgeBase, *args: str):  # type: ignore[no-untyped-def]
    # The knowledge base is handed in through click's context object (models injected), so
    # the command runs as it would from the shell, minus loading the real embedders.
    return CliRunner().invoke(cli, ["eval", "--no-calibration", *args], obj={"kbase": kbase})


def test_out_writes_the_three_reports_and_prints_the_table(
    seed_kb: KnowledgeBase, tmp_path: Path
) -> None:
    gold = write_gold(tmp_path / "gold.jsonl", bad_line_after=2)
    out = tmp_path / "reports"
    result = invoke(seed_kb, "--gold", str(gold), "--configs", "bm25,full", "--out", str(out),
                    "--failures")
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.glob("report.*")} == {"report.json", "report.md", "report.html"}
    assert "| config | settings hash |" in result.stdout and "| full |" in result.stdout
    assert "gold.jsonl line 3: missing field 'question'" in result.stderr
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["gold"]["errors"] == ["gold.jsonl line 3: missing field 'question'"]
    assert data["gold"]["n"] == 4  # the other four lines were evaluated
    assert [r["name"] for r in data["runs"]] == ["bm25", "full"]


def test_json_prints_the_summary_as_valid_json(seed_kb: KnowledgeBase, tmp_path: Path) -> None:
    gold = write_gold(tmp_path / "gold.jsonl")
    result = invoke(seed_kb, "--gold", str(gold), "--configs", "full,generative", "--answers",
                    "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # nothing but the JSON on stdout
    full, generative = summary["runs"]
    assert full["status"] == "ok" and full["retrieval"] is None
    assert full["answers"]["refusal_recall"] == 1.0 and full["config_hash"]
    assert set(full["answer_latency_ms"]) == {"retrieve", "answer", "total"}
    assert generative["status"] == "skipped" and "language model" in generative["reason"]
    assert summary["parts"] == ["answers"]
    assert Path(summary["reports"]["html"]).is_file()
    assert "%|" not in result.stderr  # no progress bar with --json


def test_unknown_configuration_is_a_usage_error(seed_kb: KnowledgeBase, tmp_path: Path) -> None:
    result = invoke(seed_kb, "--gold", str(write_gold(tmp_path / "g.jsonl")), "--configs",
                    "full,bogus", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "bogus" in result.output
    assert not (tmp_path / "r").exists()
