"""The persistent index: incremental, idempotent, crash-safe, and honest about bad files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kb.index import KnowledgeBase, unit_chunk_id
from kb.indexer import ingest, remove_document
from kb.settings import Settings
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[2]

PARAS = {
    "alpha.txt": "Alpha Report\n\nThe relocation programme moved 9.6 million people out of "
    "inhospitable areas. Each household received new housing.\n\nSchools were built near the "
    "new settlements so that children could attend.\n",
    "beta.md": "# Beta Study\n\n## Education\n\nEducation support reached 775,000 students in "
    "poor counties. Teachers were trained.\n\n## Health\n\nBasic medical insurance covered "
    "the registered poor.\n",
    "gamma.txt": "Gamma Notes\n\nMicrofinance loans of up to 50,000 yuan were offered without "
    "collateral to registered poor households.\n",
}


def write_corpus(corpus: Path) -> None:
    for name, text in PARAS.items():
        (corpus / name).write_text(text, encoding="utf-8")


def state(kbase: KnowledgeBase) -> dict[str, object]:
    """Everything that must match between two indexes built from the same corpus."""
    fresh = KnowledgeBase(kbase.settings, embedders=kbase._embedders)
    return {
        "catalog": sorted(fresh.catalog.chunks),
        "docs": sorted(fresh.catalog.documents),
        **{name: sorted(fresh.store(name).ids()) for name in fresh.embedder_names},
        "bm25": sorted(fresh.lexical().ids),
    }


def test_ingest_then_reingest_embeds_nothing(settings: Settings, fake_embedders) -> None:
    write_corpus(settings.corpus_dir)
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    first = ingest(kbase, progress=False)
    assert first.ok and sorted(first.added) == sorted(PARAS)
    n_chunks = len(kbase.catalog.chunks)
    assert n_chunks >= 3
    assert fake_embedders["minilm"].passages_embedded == n_chunks
    before = state(kbase)

    second = ingest(KnowledgeBase(settings, embedders=fake_embedders), progress=False)
    assert second.chunks_embedded == 0
    assert sorted(second.unchanged) == sorted(PARAS)
    assert fake_embedders["minilm"].passages_embedded == n_chunks
    assert state(kbase) == before


def test_changed_file_replaces_only_its_chunks(settings: Settings, fake_embedders) -> None:
    write_corpus(settings.corpus_dir)
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    ingest(kbase, progress=False)
    gamma_before = set(kbase.catalog.chunk_ids("gamma"))
    alpha_before = set(kbase.catalog.chunk_ids("alpha"))

    (settings.corpus_dir / "alpha.txt").write_text(
        PARAS["alpha.txt"] + "\nA new paragraph about ecological compensation jobs.\n"
    )
    report = ingest(kbase, progress=False)
    assert report.updated == ["alpha.txt"]
    assert set(kbase.catalog.chunk_ids("gamma")) == gamma_before
    assert set(kbase.catalog.chunk_ids("alpha")) != alpha_before
    for name in kbase.embedder_names:
        stored = kbase.store(name).ids(where={"doc_id": "alpha"})
        assert {unit_chunk_id(u) for u in stored} == set(kbase.catalog.chunk_ids("alpha"))
    assert any("ecological" in kbase.catalog.chunks[c].text for c in kbase.lexical().ids)


def test_removed_file_leaves_every_index(settings: Settings, fake_embedders) -> None:
    write_corpus(settings.corpus_dir)
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    ingest(kbase, progress=False)
    (settings.corpus_dir / "gamma.txt").unlink()
    report = ingest(kbase, progress=False)
    assert report.removed == ["gamma.txt"]
    assert "gamma" not in kbase.catalog.documents
    for name in kbase.embedder_names:
        assert kbase.store(name).ids(where={"doc_id": "gamma"}) == set()
    assert not any(kbase.catalog.chunks.get(c) is None for c in kbase.lexical().ids)
    assert len(kbase.lexical().ids) == len(kbase.catalog.chunks)


def test_remove_document_deletes_file_and_chunks(settings: Settings, fake_embedders) -> None:
    write_corpus(settings.corpus_dir)
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    ingest(kbase, progress=False)
    remove_document(kbase, "beta")
    assert not (settings.corpus_dir / "beta.md").exists()
    assert "beta" not in kbase.catalog.documents
    assert kbase.store("minilm").ids(where={"doc_id": "beta"}) == set()


def test_bad_file_is_reported_and_the_rest_ingests(settings: Settings, fake_embedders) -> None:
    write_corpus(settings.corpus_dir)
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    ingest(kbase, progress=False)
    before = state(kbase)
    (settings.corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage garbage")
    (settings.corpus_dir / "empty.txt").write_bytes(b"")
    (settings.corpus_dir / "notes.xyz").write_text("what is this")
    report = ingest(kbase, progress=False)
    assert not report.ok
    assert sorted(e.source for e in report.errors) == ["broken.pdf", "empty.txt", "notes.xyz"]
    assert all(e.reason for e in report.errors)
    assert state(kbase) == before


def test_bad_file_does_not_remove_its_previous_version(settings: Settings, fake_embedders) -> None:
    write_corpus(settings.corpus_dir)
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    ingest(kbase, progress=False)
    (settings.corpus_dir / "gamma.txt").write_bytes(b"")  # emptied by mistake
    report = ingest(kbase, progress=False)
    assert [e.source for e in report.errors] == ["gamma.txt"]
    assert kbase.catalog.chunk_ids("gamma")


def test_cli_ingest_and_docs(settings: Settings, monkeypatch, capsys) -> None:
    """`kb ingest` exits non-zero when a file fails, `kb docs --json` lists the rest."""
    import json

    from app import cli as cli_module
    from kb import index as index_module

    write_corpus(settings.corpus_dir)
    (settings.corpus_dir / "empty.txt").write_bytes(b"")
    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    monkeypatch.setattr(index_module, "get_embedder", lambda name, batch_size=32: fakes[name])
    args = ["--data-dir", str(settings.data_dir), "--corpus-dir", str(settings.corpus_dir)]
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main([*args, "ingest", "--quiet"])
    assert exit_info.value.code == 1
    out = capsys.readouterr()
    assert "empty.txt" in out.err and "3 documents" in out.out
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main([*args, "docs", "--json"])
    assert exit_info.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["source"] for r in rows) == sorted(PARAS)
    assert all(r["chunks"] >= 1 for r in rows)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from kb.index import KnowledgeBase, unit_chunk_id
    from kb.indexer import ingest
    from kb.settings import Settings
    from tests.fakes import FakeEmbedder

    class SlowFake(FakeEmbedder):
        def embed_passages(self, texts):
            print("embedding", flush=True)
            time.sleep(float({delay!r}))
            return super().embed_passages(texts)

    s = Settings(data_dir=Path({data!r}), corpus_dir=Path({corpus!r}))
    kb = KnowledgeBase(s, embedders={{"minilm": SlowFake("minilm"), "e5": SlowFake("e5")}})
    ingest(kb, progress=False)
    print("done", flush=True)
    """
)


def _run_ingest(settings: Settings, delay: float) -> subprocess.Popen:
    script = KILL_SCRIPT.format(root=str(ROOT), delay=delay, data=str(settings.data_dir),
                                corpus=str(settings.corpus_dir))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})


@pytest.mark.integration
@pytest.mark.parametrize("kill_after", [2, 5])
def test_kill_9_during_ingest_converges(tmp_path: Path, kill_after: int) -> None:
    """Killed half-way (after `kill_after` embedding calls), the old index stays usable and
    the next run ends in exactly the state of a clean ingest."""
    clean = Settings(data_dir=tmp_path / "clean", corpus_dir=tmp_path / "corpus")
    clean.corpus_dir.mkdir()
    write_corpus(clean.corpus_dir)
    killed = Settings(data_dir=tmp_path / "killed", corpus_dir=clean.corpus_dir)

    # a previous, smaller index that must survive the crash
    (tmp_path / "extra.txt").write_text("Extra Doc\n\nDibao allowances covered 19 million.\n")
    proc = _run_ingest(killed, 0.0)
    assert proc.wait(timeout=120) == 0
    (clean.corpus_dir / "extra.txt").write_text((tmp_path / "extra.txt").read_text())
    (clean.corpus_dir / "alpha.txt").write_text(PARAS["alpha.txt"] + "\nMore text added.\n")

    proc = _run_ingest(killed, 0.5)
    calls = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("embedding"):
            calls += 1
            if calls >= kill_after:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.2)

    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    survivor = KnowledgeBase(killed, embedders=fakes)
    assert survivor.catalog.documents, "the previous index must still load"
    assert len(survivor.lexical().ids) == len(survivor.catalog.chunks)

    assert _run_ingest(killed, 0.0).wait(timeout=120) == 0
    assert _run_ingest(clean, 0.0).wait(timeout=120) == 0
    a = KnowledgeBase(killed, embedders=fakes)
    b = KnowledgeBase(clean, embedders=fakes)
    assert state(a) == state(b)
