"""kill -9 during an ingest into a Chroma server (of the ingest, then of the server): the
previous index still answers, and a re-run ends in exactly the state of a clean ingest
(catalog, vector ids and counts, BM25). The embedded store's version is in
tests/kb/test_indexer.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kb.index import KnowledgeBase, vector_units
from kb.indexer import ingest
from kb.retriever import retrieve
from kb.settings import Settings
from tests.chroma_server import ChromaServer
from tests.fakes import FakeEmbedder
from tests.kb.test_indexer import PARAS, state, write_corpus

ROOT = Path(__file__).resolve().parents[2]
EXTRA = "Extra Doc\n\nDibao allowances covered 19 million rural residents.\n"


def start_ingest(settings: Settings, delay: float) -> subprocess.Popen[str]:
    """`kb ingest` (fake embedders, DELAY s per embedding call) in its own process."""
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    if settings.chroma_url:
        env["KB_CHROMA_URL"] = settings.chroma_url
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.run_ingest", str(delay),
         "--data-dir", str(settings.data_dir), "--corpus-dir", str(settings.corpus_dir),
         "ingest", "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def assert_whole(kbase: KnowledgeBase) -> None:
    """Every chunk in the catalog has all its vectors in every store (orphans may remain)."""
    expected = {u for c in kbase.catalog.chunks.values() for u, _ in vector_units(c)}
    for name in kbase.embedder_names:
        missing = expected - kbase.store(name).ids()
        assert not missing, f"{name}: {len(missing)} vectors of catalogued chunks are gone"


def full_state(kbase: KnowledgeBase) -> dict[str, object]:
    fresh = KnowledgeBase(kbase.settings, embedders=kbase._embedders)
    return {
        **state(fresh),
        "registry": sorted((e.doc_id, e.fingerprint, e.chunks)
                           for e in fresh.catalog.registry.values()),
        "counts": [fresh.store(n).count() for n in fresh.embedder_names],
    }


@pytest.mark.integration
# Of the 4 embedding calls (alpha, extra; two models each), killed during the 2nd: alpha's
# first model's new vectors are on the server, its catalog entry and old vectors are not yet
# replaced. (The embedded store is killed at two points in tests/kb/test_indexer.py.)
@pytest.mark.parametrize("kill_after", [2])
def test_kill_9_during_server_ingest_converges(tmp_path: Path, chroma_server,
                                                kill_after: int) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus)
    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    killed = Settings(data_dir=tmp_path / "killed", corpus_dir=corpus,
                      chroma_url=chroma_server.new_url())
    clean = Settings(data_dir=tmp_path / "clean", corpus_dir=corpus,
                     chroma_url=chroma_server.new_url())

    # the previous index, which must survive the crash
    assert ingest(KnowledgeBase(killed, embedders=fakes), progress=False).ok
    before = retrieve("relocation programme households", KnowledgeBase(killed, embedders=fakes))
    (corpus / "extra.txt").write_text(EXTRA)
    (corpus / "alpha.txt").write_text(PARAS["alpha.txt"] + "\nMore text added.\n")

    proc = start_ingest(killed, 0.3)
    calls = 0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("embedding"):
                calls += 1
                if calls >= kill_after:
                    break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert calls >= kill_after, proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL

    survivor = KnowledgeBase(killed, embedders=fakes)
    assert survivor.catalog.documents, "the previous index must still load"
    assert_whole(survivor)
    hits = retrieve("relocation programme households", survivor)
    assert hits and all(h.chunk.chunk_id in survivor.catalog.chunks for h in hits)
    assert hits[0].chunk.doc_id == before[0].chunk.doc_id == "alpha"

    report = ingest(KnowledgeBase(killed, embedders=fakes), progress=False)
    assert report.ok, report.errors
    assert ingest(KnowledgeBase(clean, embedders=fakes), progress=False).ok
    a = full_state(KnowledgeBase(killed, embedders=fakes))
    b = full_state(KnowledgeBase(clean, embedders=fakes))
    assert a == b
    assert a["counts"] == [len(a[n]) for n in ("minilm", "e5")]  # no duplicates
    assert "extra" in a["docs"]


@pytest.mark.integration
def test_chroma_server_killed_during_ingest(tmp_path: Path, chroma_server) -> None:  # type: ignore[no-untyped-def]
    """The server gets SIGKILL half-way through an ingest: the ingest exits 1 with one line
    naming the server; once it is back (same path), a re-run ends as a clean ingest."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus)
    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    clean = Settings(data_dir=tmp_path / "clean", corpus_dir=corpus,
                     chroma_url=chroma_server.new_url())
    with ChromaServer(tmp_path / "chroma") as server:
        victim = Settings(data_dir=tmp_path / "victim", corpus_dir=corpus,
                          chroma_url=f"{server.url}/policykb")
        assert ingest(KnowledgeBase(victim, embedders=fakes), progress=False).ok
        (corpus / "extra.txt").write_text(EXTRA)
        (corpus / "alpha.txt").write_text(PARAS["alpha.txt"] + "\nMore text added.\n")

        proc = start_ingest(victim, 0.3)
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if line.startswith("embedding"):
                break
        server.kill()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err[-3000:]
        errors = [ln for ln in err.splitlines() if ln.startswith("error")]
        assert len(errors) == 1, err[-3000:]
        assert errors[0].startswith(f"error: {victim.chroma_url}: ingest stopped"), errors[0]

        server.start()
        assert_whole(KnowledgeBase(victim, embedders=fakes))  # the previous index survived
        assert ingest(KnowledgeBase(victim, embedders=fakes), progress=False).ok
        assert ingest(KnowledgeBase(clean, embedders=fakes), progress=False).ok
        assert full_state(KnowledgeBase(victim, embedders=fakes)) == \
            full_state(KnowledgeBase(clean, embedders=fakes))
