"""The benchmark's parts: the synthetic corpus (re-issued seeds that ingest through the normal
path), the edited files, the child-process measurements, and the report."""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from evals.bench.measure import disk_usage, percentiles, run_child
from evals.bench.report import replace_section, write_report
from evals.bench.synth import change_files, make_corpus, section_segments
from ingest.config import IngestSettings
from ingest.manifest import load_manifest
from ingest.pipeline import parse_file
from kb.index import KnowledgeBase, vector_units
from kb.indexer import ingest
from kb.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SEED = "004_34875dc8bc997323.txt"  # the smallest seed: 45 chunks


def test_section_segments_skip_the_contents_and_find_two_line_headings() -> None:
    raw = "\n".join([
        "A Report", "", "Contents", "Preface.....\t1", "1. Chinese Poverty Alleviation",
        "   Takes Shape… ………… 5", "Conclusion.....\t9", "",
        "Preface", "", "Why this report.", "",
        "1. Chinese Poverty Alleviation", "     Takes Shape", "", "Body one.", "",
        "Conclusion", "", "The end. The preface said why.",
    ])
    titles = ["Preface", "1. Chinese Poverty Alleviation Takes Shape", "Conclusion", "Missing"]
    segments = section_segments(raw, titles)
    assert [s.split("\n", 1)[0] for s in segments] == [
        "A Report", "Preface", "1. Chinese Poverty Alleviation", "Conclusion"]
    assert "\n".join(segments) == raw


def test_synthetic_corpus_reissues_the_seeds_with_their_own_metadata(tmp_path: Path) -> None:
    info = make_corpus(ROOT / "corpus", tmp_path, scale=3)
    seeds = load_manifest(ROOT / "corpus")
    manifest = load_manifest(tmp_path)
    assert info.files == 3 * len(seeds) == len(manifest)
    assert len({m.doc_id for m in manifest.values()}) == info.files
    assert (tmp_path / "aliases.toml").exists() and (tmp_path / "lexicon.toml").exists()
    tomllib.loads((tmp_path / "manifest.toml").read_text())
    moved = 0
    for name, meta in seeds.items():
        seed_text = (ROOT / "corpus" / name).read_text(encoding="utf-8")
        assert (tmp_path / name).read_text(encoding="utf-8") == seed_text  # copy 0
        assert manifest[name] == meta
        for k in (1, 2):
            copy = f"{Path(name).stem}-copy{k:03d}.txt"
            text = (tmp_path / copy).read_text(encoding="utf-8")
            # the same lines, sections in another order
            assert Counter(text.split("\n")) == Counter(seed_text.split("\n"))
            moved += text != seed_text
            entry = manifest[copy]
            assert entry.doc_id == f"{meta.doc_id}-copy{k:03d}"
            assert entry.title == f"{meta.title} (edition {k})"
            assert entry.publisher == meta.publisher and entry.kind == meta.kind
            year, month = entry.published.split("-")
            assert 2015 <= int(year) <= 2025 and 1 <= int(month) <= 12
    assert moved >= len(seeds)  # most copies really are shuffled
    assert all(n >= 5 for n in info.shuffled.values()), info.shuffled


def test_synthetic_corpus_ingests_through_the_normal_path_with_cache_hits(
    tmp_path: Path, fake_embedders
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ROOT / "corpus" / SEED, seeds / SEED)
    corpus = tmp_path / "corpus"
    make_corpus(seeds, corpus, scale=3)
    kbase = KnowledgeBase(Settings(data_dir=tmp_path / "data", corpus_dir=corpus),
                          embedders=fake_embedders)
    report = ingest(kbase, progress=False)
    assert report.ok, report.errors
    assert len(report.added) == 3 and len(kbase.catalog.documents) == 3
    windows = sum(len(vector_units(c)) for c in kbase.catalog.chunks.values())
    assert kbase.store("e5").count() == windows
    # the copies repeat the seed's windows: embedded once, then served by the cache
    assert report.windows_cached >= windows
    assert fake_embedders["e5"].passages_embedded < windows / 2

    changed = change_files(corpus, fraction=0.5)
    assert len(changed) == 1 and "-copy" in changed[0]
    again = ingest(kbase, progress=False)
    assert again.updated == changed and again.windows_embedded > 0
    before = {t for c in parse_file(seeds / SEED, None, IngestSettings()).chunks
              for _, t in vector_units(c)}
    after = parse_file(corpus / changed[0], None, IngestSettings()).chunks
    assert any("revised in edition" in t and t not in before
               for c in after for _, t in vector_units(c))


@pytest.mark.integration
def test_run_child_reports_the_childs_own_peak_memory_and_json(tmp_path: Path) -> None:
    code = ("import json; b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]);"
            "print('progress'); print(json.dumps({'n': len(b)}))")
    small = run_child([sys.executable, "-c", "print(1)"], {}, tmp_path / "a.log")
    big = run_child([sys.executable, "-c", code], {}, tmp_path / "b.log")
    assert small.returncode == big.returncode == 0
    assert big.max_rss_mb > 250 > small.max_rss_mb
    assert big.json() == {"n": 300 * 1024 * 1024}
    failed = run_child([sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path / "c.log")
    assert failed.returncode == 3


def test_disk_usage_and_percentiles(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_bytes(b"1" * 100)
    (tmp_path / "f").write_bytes(b"1" * 10)
    assert disk_usage(tmp_path) == {"d": 100, "f": 10, "total": 110}
    p = percentiles([float(i) for i in range(1, 101)])
    assert p["n"] == 100 and p["p50"] == 50.5 and p["p95"] == 95.0 and p["max"] == 100.0
    assert percentiles([])["p95"] is None


def _results() -> dict:
    def ingest_row(chunks: int, wall: float, embed: float, embedded: int, cached: int) -> dict:
        return {"wall_s": wall, "max_rss_mb": 900.0, "load_before": [0.5, 0, 0],
                "load_after": [0.7, 0, 0],
                "result": {"embed_seconds": embed, "windows_embedded": embedded,
                           "windows_cached": cached, "updated": ["a"], "chunks_embedded": 9},
                "index": {"documents": chunks // 100, "chunks": chunks,
                          "windows_per_model": chunks * 2}, "disk": {"chroma": 10, "total": 10}}

    def latency(chunks: int, p50: float) -> dict:
        ms = {"n": 140, "p50": p50, "p95": 2 * p50, "max": 3 * p50, "mean": p50}
        return {"wall_s": 30.0, "max_rss_mb": 700.0, "load_before": [0.3, 0, 0],
                "load_after": [0.4, 0, 0],
                "result": {"chunks": chunks, "questions": 70, "rounds": 2, "retrieve_ms": ms,
                           "answer_ms": ms, "cold_first_answer_s": 9.0}}

    return {
        "scale": 10, "started": "2026-01-01 00:00:00", "finished": "2026-01-01 01:00:00",
        "commit": "abc", "command": "python -m evals.bench run --scale 10",
        "machine": {"cpus": 2, "memory_gb": 24.0, "python": "3.11"},
        "chroma": {"version": "1.5", "max_batch_size": 5461},
        "synthetic_corpus": {"files": 50, "bytes": 5_000_000},
        "changed_files": ["x-copy001.txt"],
        "stages": {
            "floor": {"wall_s": 40.0, "max_rss_mb": 800.0, "load_before": [0.2, 0, 0],
                      "load_after": [0.2, 0, 0],
                      "result": {"sample": 400, "batch_size": 32, "seed_windows": 1500,
                                 "seed_chunks": 600, "windows_per_chunk": 2.5,
                                 "parse": {"mb_per_s": 0.5, "chunks_per_s": 300.0},
                                 "models": {"minilm": {"windows_per_s": 50.0,
                                                       "chunks_per_s": 20.0, "seconds": 8.0},
                                            "e5": {"windows_per_s": 12.5,
                                                   "chunks_per_s": 5.0, "seconds": 32.0}},
                                 "chunks_per_s_all_models": 4.0}},
            "ingest_1x_nocache": ingest_row(600, 150.0, 140.0, 3000, 0),
            "ingest_10x_cache": ingest_row(6000, 400.0, 150.0, 3000, 27000),
            "reingest_10x_unchanged": ingest_row(6000, 20.0, 0.0, 0, 0),
            "reingest_10x_changed": ingest_row(6000, 60.0, 30.0, 200, 400),
            "latency_1x": latency(600, 80.0),
            "latency_10x": latency(6000, 120.0),
        },
    }


def test_report_states_the_repeated_text_and_the_unique_text_cost(tmp_path: Path) -> None:
    (tmp_path / "bench.md").write_text("# old\n\n<!-- load:start -->\nload table\n"
                                       "<!-- load:end -->\n")
    results = _results()
    write_report(results, tmp_path)
    md = (tmp_path / "bench.md").read_text()
    assert md.startswith("# Benchmarks: ingest at 1x and 10x")
    assert "load table" in md and md.count("<!-- bench:start -->") == 1
    assert "repeats the seeds' text" in md and "**not** the cost of 100x new text" in md
    # unique text: 12,000 windows at 50/s + at 12.5/s = 1,200 s, plus 400 - 150 s of the rest
    derived = json.loads((tmp_path / "bench.json").read_text())["derived"]
    assert derived["unique"]["total_s"] == 1450
    assert derived["growth"]["answer_p50"] == 1.5
    assert "x1.5" in md and "| 10x | 6,000 | 120.0 ms |" in md
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    write_report(results, tmp_path)  # idempotent: sections replaced, not appended
    assert (tmp_path / "bench.md").read_text() == md


def test_replace_section_appends_then_replaces() -> None:
    text = replace_section("# T\n", "load", "one")
    assert text == "# T\n\n<!-- load:start -->\none\n<!-- load:end -->\n"
    assert replace_section(text, "load", "two").count("two") == 1
    assert "one" not in replace_section(text, "load", "two")
