"""The app's Evaluate tab (for evaluators): pick the bundled dev set or upload a gold JSONL,
choose configurations, run, read the side-by-side summary and the failures, download the reports.

It runs the same ``evals.suite.run_suite`` and writes the same reports as `kb eval`. The library
cannot change while an evaluation runs (it holds the app's read lock), and one evaluation runs
at a time (its own queue).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr

from app.library import ReadWriteLock
from evals.configs import DEFAULT_CONFIGS, KNOWN
from evals.gold import load_gold
from evals.report import answer_text, side_by_side, write_reports
from evals.retrieval import DEFAULT_GOLD
from evals.suite import DEFAULT_LABELS, PARTS, question_rows, run_suite
from kb.index import KnowledgeBase

DEV_SET = "Bundled dev set (evals/gold/dev.jsonl)"
UPLOADED = "Uploaded gold file"
FAILURE_HEADERS = ["config", "id", "type", "problems", "question", "answer"]
INTRO = (
    "Run the citation-accuracy evaluation on a gold question set and compare configurations "
    "side by side: retrieval (hit@k, MRR, nDCG) and cited answers (key facts, ALCE citation "
    "precision and recall, gold-citation precision, grounded facts, refusals, latency). A gold "
    "file is JSON Lines with `id`, `question`, `answerable`, `key_facts`, `evidence` "
    "[{`doc`, `quote`}] and `type`; malformed lines are listed and skipped. The 70-question dev "
    "set takes a few minutes for four configurations; the library cannot change meanwhile."
)


class Evaluator:
    """The tab's handler over one knowledge base; reports go under `exports`; the judge is
    calibrated against `labels` (None: no calibration section)."""

    def __init__(self, kbase: KnowledgeBase, lock: ReadWriteLock, exports: Path,
                 labels: Path | None = DEFAULT_LABELS):
        self.kbase = kbase
        self.lock = lock
        self.exports = exports
        self.labels = labels

    def run(self, source: str, upload: str | None, configs: list[str] | None,
            parts: list[str] | None,
            progress: gr.Progress | None = gr.Progress(),  # noqa: B008 - gradio's idiom
            ) -> tuple[str, Any, Any, Any]:
        """(status Markdown, summary table, failures table, report files)."""
        configs = [c for c in (configs or []) if c in KNOWN]
        parts = [p for p in (parts or []) if p in PARTS]
        if not configs:
            return "Choose at least one configuration.", None, None, None
        if not parts:
            return "Choose retrieval, answers or both.", None, None, None
        if source == UPLOADED and not upload:
            return "Upload a gold JSONL file, or choose the bundled dev set.", None, None, None
        path = Path(upload) if source == UPLOADED and upload else DEFAULT_GOLD
        try:
            items, errors = load_gold([path])
        except (UnicodeDecodeError, OSError) as exc:
            return f"Cannot read {path.name}: {exc}", None, None, None
        if not items:
            listed = "\n".join(f"- {e}" for e in errors[:20])
            return f"No well-formed question in {path.name}.\n\n{listed}", None, None, None

        def track(iterable: Iterable[Any], desc: str, total: int) -> Iterable[Any]:
            return progress.tqdm(iterable, desc=desc, total=total) if progress else iterable

        with self.lock.read():
            suite = run_suite(items, self.kbase, configs, parts, progress=track,
                              gold_files=[path.name], gold_errors=errors,
                              labels_path=self.labels,
                              cache_dir=self.kbase.settings.data_dir / "eval-cache")
        out = Path(tempfile.mkdtemp(dir=self.exports, prefix="eval-"))
        paths = write_reports(suite, out)
        header, rows = side_by_side(suite)
        return (self.status(suite, path.name), {"headers": header, "data": rows},
                {"headers": FAILURE_HEADERS, "data": failure_rows(suite)},
                [str(paths["html"]), str(paths["md"]), str(paths["json"])])

    @staticmethod
    def status(suite: dict[str, Any], gold_name: str) -> str:
        gold = suite["gold"]
        n = len(suite["runs"])
        lines = [f"**{gold['n']} questions** from `{gold_name}` ({gold['answerable']} "
                 f"answerable), {n} configuration{'s' if n != 1 else ''}, {suite['wall_s']} s."]
        lines += [f"- **{r['name']}** skipped: {r['reason']}"
                  for r in suite["runs"] if r["status"] != "ok"]
        if gold["errors"]:
            lines.append(f"\n**{len(gold['errors'])} malformed line(s) skipped** "
                         "(the rest was evaluated):")
            lines += [f"- {e}" for e in gold["errors"][:20]]
        return "\n".join(lines)


def failure_rows(suite: dict[str, Any]) -> list[list[str]]:
    """Every question with a problem, per configuration, failures only (the report has all)."""
    rows = []
    for run in suite["runs"]:
        if run["status"] != "ok":
            continue
        for r in question_rows(run, suite["k"]):
            if r["problems"]:
                rows.append([run["name"], r["id"], r["type"], "; ".join(r["problems"]),
                             r["question"], answer_text(r["answer"], 300)])
    return rows


def evaluate_tab(kbase: KnowledgeBase, lock: ReadWriteLock, exports: Path) -> Evaluator:
    """The tab's components and events; call inside `with gr.Tab(...)`."""
    evaluator = Evaluator(kbase, lock, exports)
    gr.Markdown(INTRO)
    with gr.Row():
        source = gr.Radio([DEV_SET, UPLOADED], value=DEV_SET, label="Gold set",
                          elem_id="kb-eval-source")
        upload = gr.File(label="Gold JSONL", file_types=[".jsonl", ".json", ".txt"],
                         type="filepath", elem_id="kb-eval-upload")
    with gr.Row():
        configs = gr.CheckboxGroup(list(KNOWN), value=list(DEFAULT_CONFIGS),
                                   label="Configurations", elem_id="kb-eval-configs",
                                   info="generative runs only when a language model is "
                                        "configured; otherwise it is reported as skipped.")
        parts = gr.CheckboxGroup(list(PARTS), value=list(PARTS), label="Evaluate")
    run = gr.Button("Run evaluation", variant="primary", elem_id="kb-eval-run")
    status = gr.Markdown(elem_id="kb-eval-status")
    empty_summary = side_by_side({"runs": [], "k": 10, "parts": list(PARTS)})[0]
    summary = gr.Dataframe(headers=empty_summary, label="Side by side", interactive=False,
                           wrap=True, elem_id="kb-eval-summary")
    failures = gr.Dataframe(headers=FAILURE_HEADERS, interactive=False, wrap=True,
                            label="Questions with a problem (the HTML report has every question "
                                  "with its citations and verdicts)",
                            elem_id="kb-eval-failures")
    files = gr.File(label="Reports (HTML, Markdown, JSON)", file_count="multiple",
                    interactive=False, elem_id="kb-eval-reports")
    upload.upload(lambda: UPLOADED, None, [source], api_name=False)
    run.click(evaluator.run, [source, upload, configs, parts],
              [status, summary, failures, files], api_name="evaluate",
              concurrency_limit=1, concurrency_id="evaluate")
    return evaluator
