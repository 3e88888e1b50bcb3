"""The `kb` command line: thin wrappers over the library functions in kb/ and evals/.

Every command that prints for people also takes `--json` for programs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from kb.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _kbase(ctx: click.Context):  # type: ignore[no-untyped-def]
    from kb.index import KnowledgeBase

    if "kbase" not in ctx.obj:
        ctx.obj["kbase"] = KnowledgeBase(_settings(ctx))
    return ctx.obj["kbase"]


DEFAULT_EVAL_CONFIGS = ("naive", "dense", "hybrid", "full")  # evals.configs.DEFAULT_CONFIGS


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Overrides KB_DATA_DIR.")
@click.option("--corpus-dir", type=click.Path(path_type=Path), help="Overrides KB_CORPUS_DIR.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, corpus_dir: Path | None) -> None:
    """policykb: cited answers from policy documents on China's poverty alleviation."""
    overrides: dict[str, Any] = {}
    if data_dir:
        overrides["data_dir"] = data_dir
    if corpus_dir:
        overrides["corpus_dir"] = corpus_dir
    ctx.ensure_object(dict)
    ctx.obj["settings"] = Settings(**overrides)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], as_json: bool, quiet: bool) -> None:
    """Ingest the corpus directory, or the given files (copied into it)."""
    from ingest.records import IngestError
    from kb.indexer import IngestReport
    from kb.indexer import ingest as run_ingest

    kbase = _kbase(ctx)
    existing = [p for p in paths if p.exists()]
    if paths and not existing:
        report = IngestReport()  # nothing to do; don't fall back to the whole corpus
    else:
        report = run_ingest(kbase, existing or None, progress=not (quiet or as_json))
    report.errors.extend(IngestError(p.name, "no such file") for p in paths if not p.exists())
    if as_json:
        _echo_json(report.as_dict())
    else:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        for err in report.errors:
            click.echo(f"error: {err.source}: {err.reason}", err=True)
        click.echo(report.summary(len(kbase.catalog.documents), len(kbase.catalog.chunks)))
    sys.exit(0 if report.ok else 1)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def docs(ctx: click.Context, as_json: bool) -> None:
    """List ingested documents with pages, chunks and publication date."""
    kbase = _kbase(ctx)
    rows = []
    for d in kbase.documents():
        rows.append({
            "doc_id": d.doc_id, "source": d.source, "title": d.title, "publisher": d.publisher,
            "published": d.published, "kind": d.kind, "language": d.language, "pages": d.pages,
            "chunks": len(kbase.catalog.chunk_ids(d.doc_id)),
        })
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No documents ingested yet: run `kb ingest`.")
    for r in rows:
        click.echo(f"{r['doc_id']:<24} {r['published'] or '-':<8} {r['pages']:>4} pages "
                   f"{r['chunks']:>4} chunks  {r['title'][:70]}")


def batch_items(lines: Any) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    """(id, question, whole item) for each JSONL line; a bad line is reported on stderr with its
    number and skipped, the rest still run."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            qid, question = item["id"], str(item["question"])
        except (ValueError, KeyError, TypeError) as exc:
            click.echo(f"line {n}: {exc!r}", err=True)
            continue
        yield qid, question, item


def filter_options(command: Any) -> Any:
    """The options every command that searches shares (applied in dense and lexical search)."""
    for option in reversed([
        click.option("--doc", multiple=True, help="Only this doc_id (repeatable)."),
        click.option("--publisher", multiple=True, help="Only this publisher (repeatable)."),
        click.option("--kind", multiple=True,
                     help="Only this chunk kind: body, glossary, footnote, case, box."),
        click.option("--year-from", type=int, help="Only documents published this year or later."),
        click.option("--year-to", type=int, help="Only documents published this year or earlier."),
    ]):
        command = option(command)
    return command


def _filters(doc: tuple[str, ...], year_from: int | None, year_to: int | None,
             kind: tuple[str, ...], publisher: tuple[str, ...]):  # type: ignore[no-untyped-def]
    from kb.records import Filters

    return Filters(doc_ids=doc, publishers=publisher, kinds=kind, year_from=year_from,
                   year_to=year_to)


@cli.command()
@click.argument("query", required=False, default="")
@filter_options
@click.option("--k", type=int, help="Number of passages (default from settings).")
@click.option("--batch", type=click.File("r"), help="JSONL with id and question per line.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def search(ctx: click.Context, query: str, doc: tuple[str, ...], publisher: tuple[str, ...],
           kind: tuple[str, ...], year_from: int | None, year_to: int | None, k: int | None,
           batch: Any, as_json: bool) -> None:
    """Ranked passages for a query, with the scores that ranked them."""
    from kb.retriever import retrieve

    kbase = _kbase(ctx)
    filters = _filters(doc, year_from, year_to, kind, publisher)
    if batch is not None:
        for qid, question, _ in batch_items(batch):
            hits = retrieve(question, kbase, filters, k)
            _echo_json({"id": qid, "passages": [h.as_passage() for h in hits]})
        return
    hits = retrieve(query, kbase, filters, k)
    if as_json:
        _echo_json({"query": query, "passages": [h.as_passage() for h in hits]})
        return
    if not hits:
        click.echo("No passages found.")
    for i, h in enumerate(hits, 1):
        c = h.chunk
        page = f"p. {c.page_start}" if c.page_start else "no page"
        click.echo(f"[{i}] {h.document.title[:60]} ({h.document.published}) | {c.section[:60]} | "
                   f"{page} | {c.kind}")
        click.echo(f"    scores: {h.scores}")
        click.echo(f"    {c.text[:300]}")


def _print_answer(result: Any) -> None:
    """An Answer for people: the Markdown text, then the timings."""
    click.echo(result.text)
    t = result.timings
    click.echo(f"\n({result.mode}; {t.get('total', 0):.0f} ms: "
               f"retrieve {t.get('retrieve', 0):.0f}, answer {t.get('answer', 0):.0f})")


@cli.command()
@click.argument("question", required=False, default="")
@click.option("--batch", type=click.File("r"),
              help="JSONL with id and question per line (optional history: list of questions).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per answer.")
@click.option("--mode", type=click.Choice(["extractive", "generative"]),
              help="Answer mode (default from settings: extractive).")
@click.option("--max-words", type=int, help="Target answer length (default from settings).")
@filter_options
@click.pass_context
def ask(ctx: click.Context, question: str, batch: Any, as_json: bool, mode: str | None,
        max_words: int | None, doc: tuple[str, ...], publisher: tuple[str, ...],
        kind: tuple[str, ...], year_from: int | None, year_to: int | None) -> None:
    """Answer a question with cited sentences from the documents (or abstain)."""
    from kb.answer import ModeUnavailable, answer

    kbase = _kbase(ctx)
    filters = _filters(doc, year_from, year_to, kind, publisher)

    def run(text: str, history: Any = None) -> Any:
        try:
            return answer(text, kbase, history=history, filters=filters, mode=mode,
                          max_words=max_words)
        except ModeUnavailable as exc:
            raise click.UsageError(str(exc)) from exc

    if batch is not None:
        for qid, text, item in batch_items(batch):
            result = run(text, item.get("history"))
            if as_json:
                _echo_json(result.as_dict(qid=str(qid)))
            else:
                click.echo(f"## {qid}: {text}\n")
                _print_answer(result)
                click.echo()
        return
    if not question.strip():
        raise click.UsageError("give a question, or --batch questions.jsonl")
    result = run(question)
    if as_json:
        _echo_json(result.as_dict())
    else:
        _print_answer(result)


@cli.command("eval")
@click.option("--gold", "gold", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Gold JSONL (repeatable; default evals/gold/dev.jsonl).")
@click.option("--configs", default=",".join(DEFAULT_EVAL_CONFIGS), show_default=True,
              help="Comma-separated configurations to compare: naive, dense, e5, bm25, hybrid, "
                   "full, generative (skipped, with the reason, when no model is configured).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for report.json, report.md and report.html "
                   "(default evals/reports/<timestamp>/).")
@click.option("--retrieval", is_flag=True, help="Evaluate retrieval only.")
@click.option("--answers", is_flag=True,
              help="Evaluate answers only: key facts, citations, abstention, latency.")
@click.option("--failures", is_flag=True, help="Also print the questions with a problem.")
@click.option("--k", type=int, default=10, show_default=True,
              help="Passages scored per question by the retrieval metrics.")
@click.option("--calibration/--no-calibration", default=True, show_default=True,
              help="Calibrate the judge against evals/judge_labels.jsonl (when it exists).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON on stdout (no progress bar).")
@click.pass_context
def eval_(ctx: click.Context, gold: tuple[Path, ...], configs: str, out: Path | None,
          retrieval: bool, answers: bool, failures: bool, k: int, calibration: bool,
          as_json: bool) -> None:
    """Evaluate configurations side by side on gold question sets: retrieval and cited answers,
    with reports in DIR (`kb eval --configs naive,dense,hybrid,full --out DIR`)."""
    import time

    from evals.configs import KNOWN
    from evals.gold import load_gold
    from evals.report import side_by_side, write_reports
    from evals.retrieval import DEFAULT_GOLD
    from evals.suite import DEFAULT_LABELS, question_rows, run_suite, summary

    names = [c.strip() for c in configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in KNOWN]
    if unknown or not names:
        raise click.UsageError(f"unknown configuration(s) {', '.join(unknown) or '(none)'}; "
                               f"known: {', '.join(KNOWN)}")
    parts = [p for p, on in (("retrieval", retrieval), ("answers", answers)) if on] or \
        ["retrieval", "answers"]
    files = list(gold) or [DEFAULT_GOLD]
    items, errors = load_gold(files)
    for error in errors:
        click.echo(f"warning: malformed gold line skipped: {error}", err=True)
    if not items:
        raise click.ClickException("no well-formed gold question to evaluate")
    kbase = _kbase(ctx)
    if not kbase.catalog.documents:
        click.echo("warning: the index is empty; run `kb ingest` first.", err=True)
    suite = run_suite(items, kbase, names, parts, k=k, progress=_progress(quiet=as_json),
                      gold_files=[str(f) for f in files], gold_errors=errors,
                      labels_path=DEFAULT_LABELS if calibration else None,
                      cache_dir=kbase.settings.data_dir / "eval-cache")
    out = out or Path("evals") / "reports" / time.strftime("%Y%m%d-%H%M%S")
    paths = write_reports(suite, out)
    if as_json:
        _echo_json({**summary(suite), "reports": {kind: str(p) for kind, p in paths.items()}})
        return
    header, rows = side_by_side(suite)
    click.echo("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        click.echo("| " + " | ".join(row) + " |")
    for run in suite["runs"]:
        if run["status"] != "ok":
            click.echo(f"{run['name']}: skipped: {run['reason']}")
    if failures:
        for run in (r for r in suite["runs"] if r["status"] == "ok"):
            click.echo(f"\n{run['name']}: questions with a problem")
            for row in question_rows(run, k):
                if row["problems"]:
                    click.echo(f"  {row['id']} {row['type']:<26} {'; '.join(row['problems'])}")
    click.echo(f"\n{len(items)} questions in {suite['wall_s']} s; reports: "
               f"{paths['md']}, {paths['html']}, {paths['json']}")


def _progress(quiet: bool) -> Any:
    """A tqdm progress bar on stderr for each (configuration, part) of an eval; none if quiet."""
    from tqdm import tqdm

    def track(iterable: Any, desc: str, total: int) -> Any:
        return tqdm(iterable, desc=desc, total=total, file=sys.stderr, disable=quiet,
                    leave=False, unit="q")

    return track


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Print the resolved settings (environment KB_*, config file, defaults)."""
    s = _settings(ctx)
    data = s.describe() | {"config_hash": s.config_hash()}
    if as_json:
        _echo_json(data)
    else:
        for key, value in data.items():
            click.echo(f"{key} = {value}")


@cli.command()
@click.option("--host", help="Default from settings (127.0.0.1).")
@click.option("--port", type=int, help="Default from settings (7860).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web UI (chat, library, glossary, course packs) until interrupted."""
    import logging

    from app.auth import ServeRefused
    from app.web import launch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    kbase = _kbase(ctx)
    if not kbase.catalog.documents:
        click.echo("warning: the index is empty; run `kb ingest` (or add files in the "
                   "Library tab).", err=True)
    click.echo("Loading the models (once, at start-up)...", err=True)
    try:
        launch(kbase, host, port)
    except ServeRefused as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.argument("topic")
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Write the pack to this file: .md or .docx (default: Markdown on stdout).")
@click.option("--doc", multiple=True, help="Only this doc_id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the pack as JSON.")
@click.pass_context
def pack(ctx: click.Context, topic: str, out: Path | None, doc: tuple[str, ...],
         as_json: bool) -> None:
    """A course pack on TOPIC: key concepts, quoted key facts, case excerpts, discussion
    questions and a quiz, every quote cited (e.g. `kb pack relocation --out relocation.docx`)."""
    from app.export import pack_markdown, write_pack
    from kb.pack import build_pack
    from kb.records import Filters

    if out is not None and out.suffix.lower() not in (".md", ".markdown", ".docx"):
        raise click.UsageError("--out must end in .md or .docx")
    result = build_pack(topic, _kbase(ctx), Filters(doc_ids=doc) if doc else None)
    if as_json:
        _echo_json(pack_dict(result))
    elif out is None:
        click.echo(pack_markdown(result))
    if out is not None:
        write_pack(result, out)
        click.echo(f"wrote {out} ({len(result.facts)} facts, {len(result.concepts)} concepts, "
                   f"{len(result.cases)} cases, {len(result.quiz)} quiz questions)", err=True)
    if result.empty:
        sys.exit(1)


def pack_dict(result: Any) -> dict[str, Any]:
    import dataclasses

    data = dataclasses.asdict(result)
    data["citations"] = [c.as_dict() for c in result.citations]
    return data


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="kb")
    except Exception as exc:
        from kb.store import StoreUnavailable  # imported late: chromadb is slow to import

        if not isinstance(exc, StoreUnavailable):
            raise
        click.echo(f"error: {exc}", err=True)  # e.g. the Chroma server is down: no traceback
        sys.exit(1)


if __name__ == "__main__":
    main()
