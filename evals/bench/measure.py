"""Measurements the benchmark makes, each in a child process of its own so that peak memory
(the child's own `ru_maxrss`, see `measured`) and timings belong to one job.

- `run_child`: a command (e.g. `kb ingest --json`) with wall time and peak RSS.
- `measure_floor`: embedding-only throughput of each model on a sample of real vector windows,
  and parse-only throughput on the seeds: what no ingest can beat on this machine.
- `measure_latency`: warm p50/p95 of `retrieve()` and `answer()` over gold questions, plus the
  cold start (open the index, load models, first answer).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ChildRun:
    command: list[str]
    returncode: int
    wall_s: float
    max_rss_mb: float
    stdout: str
    cpu_s: float = 0.0  # user + system CPU of the command (and its own children)
    others_cores: float | None = None  # average cores that everything else used meanwhile

    def json(self) -> Any:
        """The last line of stdout that parses as JSON (commands print their report last)."""
        for line in reversed(self.stdout.strip().splitlines()):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
        raise ValueError(f"no JSON in the output of {' '.join(self.command)}")


# Runs the command as its own child and writes that child's peak RSS (KiB) to argv[1]. A child
# forked straight from a large parent is useless to measure: Linux counts the parent's pages the
# child held between fork and exec in its `ru_maxrss` (a child of a pytest holding two models
# "peaks" at the parent's 1.5 GB). Forked from this small launcher, the command's figure is its own.
_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc if rc >= 0 else 128 - rc)\n"
)


def measured(command: Sequence[str], peak_file: Path) -> list[str]:
    """`command` under the launcher that records its own peak RSS in `peak_file`."""
    return [sys.executable, "-c", _LAUNCHER, str(peak_file), *command]


def peak_mb(peak_file: Path) -> float:
    """The peak RSS the launcher recorded, in MB (0 if the launcher was killed first)."""
    try:
        return int(peak_file.read_text()) / 1024
    except (OSError, ValueError):
        return 0.0


def run_child(command: Sequence[str], env: Mapping[str, str], log: Path,
              cwd: Path | None = None) -> ChildRun:
    """Run `command`, stdout kept, stderr to `log`; wall time and the child's peak RSS."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_suffix(".stdout")
    with out_path.open("w") as out, log.open("w") as err:
        t0 = time.perf_counter()
        peak_file = log.with_suffix(".peak")
        busy0 = busy_cpu_s()
        proc = subprocess.Popen(measured(command, peak_file), stdout=out, stderr=err,
                                env=dict(env), cwd=cwd)
        # wait4: this child's CPU, its own waited-for children included (the command).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        busy1 = busy_cpu_s()
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = round(max(0.0, busy1 - busy0 - cpu) / wall, 2)
    return ChildRun(list(command), proc.returncode, wall, peak_mb(peak_file),
                    out_path.read_text(), round(cpu, 1), others)


def busy_cpu_s() -> float | None:
    """CPU seconds all processes have used since boot, summed over cores (/proc/stat): the
    difference over a stage, less the stage's own CPU, is what other jobs took meanwhile."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def disk_usage(path: Path) -> dict[str, int]:
    """Bytes under each top-level entry of `path` (files and directories) and in total."""
    sizes: dict[str, int] = {}
    if not path.exists():
        return {"total": 0}
    for entry in sorted(path.iterdir()):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = sum(p.stat().st_size for p in files)
    sizes["total"] = sum(sizes.values())
    return sizes


def machine() -> dict[str, Any]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory_gb": round(mem / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def chroma_limits(scratch: Path) -> dict[str, Any]:
    """Chroma's version and the largest batch one call accepts on this build (SQLite limits)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(scratch),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    return {"version": chromadb.__version__, "max_batch_size": client.get_max_batch_size()}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentiles(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    arr = np.asarray(values, dtype=float)
    return {"n": len(values), "p50": round(float(np.percentile(arr, 50)), 1),
            "p95": round(float(np.percentile(arr, 95)), 1), "max": round(float(arr.max()), 1),
            "mean": round(float(arr.mean()), 1)}


def _self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the embedding-only floor

def measure_floor(seed_dir: Path, sample: int, models: Sequence[str],
                  batch_size: int = 32) -> dict[str, Any]:
    """Embedding-only throughput on `sample` real vector windows of the seeds (evenly spread),
    per model, in the same batches as ingest; and parse-only throughput on the seeds."""
    from ingest.manifest import load_manifest
    from ingest.pipeline import list_sources, parse_file
    from ingest.records import IngestError
    from kb.aliases import ALIASES_FILE
    from kb.embedder import get_embedder
    from kb.index import vector_units
    from kb.lexicon import LEXICON_FILE
    from kb.settings import Settings

    settings = Settings(corpus_dir=seed_dir)
    manifest = load_manifest(seed_dir)
    files = [f for f in list_sources([seed_dir]) if f.name not in (ALIASES_FILE, LEXICON_FILE)]
    parse_file(files[0], manifest.get(files[0].name), settings.ingest)  # imports, regexes
    t0 = time.perf_counter()
    windows: list[str] = []
    chunks = size = 0
    for path in files:
        try:
            parsed = parse_file(path, manifest.get(path.name), settings.ingest)
        except IngestError:
            continue
        size += path.stat().st_size
        chunks += len(parsed.chunks)
        windows.extend(text for c in parsed.chunks for _, text in vector_units(c))
    parse_s = time.perf_counter() - t0
    step = max(1, len(windows) // sample)
    picked = windows[::step][:sample]
    out: dict[str, Any] = {
        "seed_files": len(files), "seed_bytes": size, "seed_chunks": chunks,
        "seed_windows": len(windows), "windows_per_chunk": round(len(windows) / chunks, 3),
        "parse": {"seconds": round(parse_s, 2), "mb_per_s": round(size / 1e6 / parse_s, 2),
                  "chunks_per_s": round(chunks / parse_s, 1)},
        "sample": len(picked), "batch_size": batch_size, "models": {},
    }
    for name in models:
        t_load = time.perf_counter()
        embedder = get_embedder(name, batch_size)
        embedder.embed_passages(picked[:8])  # first-call overhead (thread pools, kernels)
        load_s = time.perf_counter() - t_load
        t1 = time.perf_counter()
        embedder.embed_passages(picked)
        secs = time.perf_counter() - t1
        per_s = len(picked) / secs
        out["models"][name] = {
            "seconds": round(secs, 2), "windows_per_s": round(per_s, 2),
            "chunks_per_s": round(per_s / out["windows_per_chunk"], 2),
            "load_and_warmup_s": round(load_s, 2),
        }
    per_chunk = sum(1 / m["chunks_per_s"] for m in out["models"].values())
    out["chunks_per_s_all_models"] = round(1 / per_chunk, 2) if per_chunk else None
    out["max_rss_mb"] = round(_self_rss_mb(), 1)
    return out


# ---------------------------------------------------------------- query latency

def measure_latency(data_dir: Path, corpus_dir: Path, gold: Path, rounds: int,
                    warmup: int = 3) -> dict[str, Any]:
    """Cold start, then warm p50/p95 of retrieve() and answer() over the gold questions
    (`rounds` passes; the first `warmup` questions are asked once beforehand, untimed)."""
    from evals.gold import load_gold
    from kb.answer import answer
    from kb.index import KnowledgeBase
    from kb.retriever import retrieve
    from kb.settings import Settings

    items, _ = load_gold([gold])
    questions = [item.question for item in items]
    t0 = time.perf_counter()
    kbase = KnowledgeBase(Settings(data_dir=data_dir, corpus_dir=corpus_dir))
    open_s = time.perf_counter() - t0
    first = answer(questions[0], kbase)
    cold_s = time.perf_counter() - t0
    for q in questions[1:warmup]:
        answer(q, kbase)
    timings: dict[str, list[float]] = {"retrieve": [], "answer": []}
    abstained = 0
    for _ in range(rounds):
        for q in questions:
            t = time.perf_counter()
            retrieve(q, kbase)
            timings["retrieve"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            result = answer(q, kbase)
            timings["answer"].append((time.perf_counter() - t) * 1000)
            abstained += result.abstained
    return {
        "documents": len(kbase.catalog.documents), "chunks": len(kbase.catalog.chunks),
        "vectors": {name: kbase.store(name).count() for name in kbase.embedder_names},
        "questions": len(questions), "rounds": rounds,
        "open_s": round(open_s, 2), "cold_first_answer_s": round(cold_s, 2),
        "first_answer_abstained": first.abstained,
        "retrieve_ms": percentiles(timings["retrieve"]),
        "answer_ms": percentiles(timings["answer"]),
        "abstained_share": round(abstained / max(1, rounds * len(questions)), 3),
        "max_rss_mb": round(_self_rss_mb(), 1),
    }
