"""`python -m evals.bench run --scale 100` (what `make bench` runs): the ingest and query
benchmarks at 1x and Nx, written to evals/reports/bench.{md,json,png}, then the load test
(evals/load.py) appended to bench.md.

Stages, each in a child process (wall time, peak RSS, load average recorded):
 1. embedding-only floor per model on a sample of real windows, and parse-only throughput;
 2. 1x cold ingest without the embedding cache, with an empty cache, and a rebuild into a new
    data directory with the cache kept (what a crash rebuild or a collection rename costs);
 3. the Nx synthetic corpus (evals/bench/synth.py) ingested cold through `kb ingest`, with an
    empty cache at the start; then again with nothing changed;
 4. 1% of the files edited, re-ingested;
 5. warm query latency of retrieve() and answer() at 1x and Nx over the dev questions.
Everything is written under a temporary work directory (never the repository's data/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from evals.bench.measure import (
    chroma_limits,
    disk_usage,
    loadavg,
    machine,
    measure_floor,
    measure_latency,
    run_child,
)
from evals.bench.report import write_report
from evals.bench.synth import change_files, make_corpus

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "evals" / "gold" / "dev.jsonl"
REPORTS = ROOT / "evals" / "reports"
BASE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false"}


@click.group()
def cli() -> None:
    """Benchmarks at scale (ingest throughput, memory, disk, query latency)."""


@cli.command()
@click.option("--seeds", type=click.Path(path_type=Path), default=ROOT / "corpus",
              show_default=True)
@click.option("--sample", default=400, show_default=True, help="Windows embedded per model.")
def floor(seeds: Path, sample: int) -> None:
    """Embedding-only and parse-only throughput of the configured embedders (JSON on stdout)."""
    from kb.settings import Settings

    models = Settings().embedding.models
    click.echo(json.dumps(measure_floor(seeds, sample, models)))


@cli.command()
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--corpus-dir", type=click.Path(path_type=Path), required=True)
@click.option("--gold", type=click.Path(path_type=Path), default=GOLD, show_default=True)
@click.option("--rounds", default=2, show_default=True)
def latency(data_dir: Path, corpus_dir: Path, gold: Path, rounds: int) -> None:
    """Warm retrieve()/answer() latency over the gold questions (JSON on stdout)."""
    click.echo(json.dumps(measure_latency(data_dir, corpus_dir, gold, rounds)))


@cli.command()
@click.option("--scale", default=100, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def corpus(scale: int, out: Path) -> None:
    """Only write the synthetic corpus (for a look, or a manual `kb ingest`)."""
    info = make_corpus(ROOT / "corpus", out, scale)
    click.echo(f"{info.files} files, {info.bytes / 1e6:.1f} MB in {out}")


@cli.command()
@click.option("--scale", default=100, show_default=True, help="Copies of each seed.")
@click.option("--work", type=click.Path(path_type=Path), default=None,
              help="Work directory (default: a new temporary one, deleted unless --keep).")
@click.option("--keep", is_flag=True, help="Keep the work directory.")
@click.option("--out", type=click.Path(path_type=Path), default=REPORTS, show_default=True)
@click.option("--sample", default=400, show_default=True, help="Windows for the floor.")
@click.option("--rounds", default=2, show_default=True, help="Passes over the dev questions.")
@click.option("--changed", default=0.01, show_default=True, help="Share of files edited.")
@click.option("--load-users", default=20, show_default=True)
@click.option("--load-seconds", default=60.0, show_default=True)
@click.option("--load-limits", default="2", show_default=True,
              help="Queue concurrency limits to try (comma-separated); the first is the "
                   "headline run, the others run for a third of the time.")
@click.option("--skip-load", is_flag=True)
@click.option("--resume", is_flag=True,
              help="With the --work directory of an earlier run (--keep) and its bench.json in "
                   "--out: skip the stages already measured, except those named by --redo.")
@click.option("--redo", default="", help="With --resume: stages to measure again, by name "
              "prefix, e.g. 'latency,floor' (the load test always runs unless --skip-load).")
def run(scale: int, work: Path | None, keep: bool, out: Path, sample: int, rounds: int,
        changed: float, load_users: int, load_seconds: float, load_limits: str,
        skip_load: bool, resume: bool, redo: str) -> None:
    """Every stage; writes bench.md, bench.json and bench.png under --out."""
    if resume and not (work and (out / "bench.json").exists()):
        raise click.UsageError("--resume needs --work DIR and OUT/bench.json of an earlier run")
    work = Path(work or tempfile.mkdtemp(prefix="policykb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m evals.bench", *sys.argv[1:]])
    if resume:
        results: dict[str, Any] = json.loads((out / "bench.json").read_text())
        if results["scale"] != scale:
            raise click.UsageError(f"bench.json is for scale {results['scale']}, not {scale}")
        results.setdefault("resumed", []).append(
            {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command})
    else:
        results = {
            "scale": scale, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine(), "commit": _commit(), "command": command,
            "stages": {}, "chroma": chroma_limits(work / "chroma-probe"),
        }
    stages = results["stages"]
    again = tuple(r.strip() for r in redo.split(",") if r.strip())

    def done(name: str) -> bool:
        skip = resume and name in stages and not name.startswith(again or ("\0",))
        if skip:
            click.echo(f"[bench] {name}: measured earlier, kept", err=True)
        return skip
    kb = str(Path(sys.executable).with_name("kb"))
    env = {**os.environ, **BASE_ENV}

    def stage(name: str, command: list[str], extra_env: dict[str, str] | None = None
              ) -> dict[str, Any]:
        if done(name):
            return stages[name]
        before = loadavg()
        click.echo(f"[bench] {name}: load {before} ...", err=True)
        child = run_child(command, {**env, **(extra_env or {})}, work / "logs" / f"{name}.log",
                          cwd=work)
        if child.returncode != 0:
            raise click.ClickException(
                f"{name} failed ({child.returncode}); see {work / 'logs' / name}.log")
        row = {"wall_s": round(child.wall_s, 1), "max_rss_mb": round(child.max_rss_mb, 1),
               "cpu_s": child.cpu_s, "others_cores": child.others_cores,
               "load_before": before, "load_after": loadavg(), "result": child.json()}
        click.echo(f"[bench] {name}: {row['wall_s']} s, {row['max_rss_mb']} MB, other jobs "
                   f"{child.others_cores} cores", err=True)
        stages[name] = row
        _save(results, out)
        return row

    def ingest(name: str, data: Path, corpus_dir: Path, cache: bool = True,
               cold: bool = False) -> dict[str, Any]:
        if done(name):
            return stages[name]
        if cold:
            shutil.rmtree(data, ignore_errors=True)
        row = stage(name, [kb, "--data-dir", str(data), "--corpus-dir", str(corpus_dir),
                           "ingest", "--json", "--quiet"],
                    {"KB_EMBEDDING__CACHE": "true" if cache else "false"})
        row["index"] = index_counts(data)
        row["disk"] = disk_usage(data)
        _save(results, out)
        return row

    try:
        bench = [sys.executable, "-m", "evals.bench"]
        stage("floor", [*bench, "floor", "--sample", str(sample)])

        c1 = work / "corpus-1x"
        if not (resume and c1.exists()):
            make_corpus(ROOT / "corpus", c1, 1)
        ingest("ingest_1x_nocache", work / "data-1x-nocache", c1, cache=False, cold=True)
        ingest("ingest_1x_cache_empty", work / "data-1x", c1, cold=True)
        rebuild = work / "data-1x-rebuild"
        if not done("ingest_1x_rebuild_cache_warm"):
            shutil.rmtree(rebuild, ignore_errors=True)
            rebuild.mkdir()
            for path in (work / "data-1x").glob("embcache.sqlite*"):
                shutil.copy(path, rebuild / path.name)
            ingest("ingest_1x_rebuild_cache_warm", rebuild, c1)

        cn = work / f"corpus-{scale}x"
        if not done(f"ingest_{scale}x_cache"):  # measured again: from an unedited corpus
            results.pop("changed_files", None)
            results.pop("synthetic_corpus", None)
        if not (resume and "synthetic_corpus" in results and cn.exists()):
            t0 = time.perf_counter()
            info = make_corpus(ROOT / "corpus", cn, scale)
            results["synthetic_corpus"] = {"files": info.files, "bytes": info.bytes,
                                           "seconds": round(time.perf_counter() - t0, 1),
                                           "sections_shuffled": info.shuffled}
        dn = work / f"data-{scale}x"
        ingest(f"ingest_{scale}x_cache", dn, cn, cold=True)
        ingest(f"reingest_{scale}x_unchanged", dn, cn)
        if "changed_files" not in results:  # never edit the same corpus twice
            results["changed_files"] = change_files(cn, changed)
            _save(results, out)
        ingest(f"reingest_{scale}x_changed", dn, cn)

        for label, data, corpus_dir in (("1x", work / "data-1x", c1),
                                        (f"{scale}x", dn, cn)):
            stage(f"latency_{label}", [*bench, "latency", "--data-dir", str(data),
                                       "--corpus-dir", str(corpus_dir), "--rounds",
                                       str(rounds)])
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        write_report(results, out)
        click.echo(f"[bench] wrote {out / 'bench.md'}", err=True)

        if not skip_load:
            from evals.load import run_load_suite

            run_load_suite(data_dir=work / "data-1x", corpus_dir=c1, users=load_users,
                           seconds=load_seconds,
                           limits=[int(x) for x in load_limits.split(",") if x.strip()],
                           out=out, env=env)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def index_counts(data_dir: Path) -> dict[str, int]:
    """Documents, chunks and vector windows (per embedder) in a data directory's catalog."""
    from kb.catalog import Catalog
    from kb.index import vector_units

    catalog = Catalog(data_dir / "catalog")
    windows = sum(len(vector_units(c)) for c in catalog.chunks.values())
    return {"documents": len(catalog.documents), "chunks": len(catalog.chunks),
            "windows_per_model": windows,
            "text_bytes": sum(len(t.encode()) for t in catalog.texts.values())}


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _save(results: dict[str, Any], out: Path) -> None:
    """Raw numbers after every stage, so a run stopped half-way still leaves what it measured."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    cli()
