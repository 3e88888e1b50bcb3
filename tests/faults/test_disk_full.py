"""A full disk or a read-only data directory during `kb ingest`: exit status 1, one line naming
the data directory (or the Chroma server) and the cause, and the previous index still answers
the same queries.

Disk full is injected (no unprivileged way to fill a real disk): at each place an ingest
writes, the error that place raises on a full disk. The Chroma and cache errors are the exact
ones seen on a real 600 KB tmpfs (`database or disk is full`, sqlite code 13). The read-only
directory is real: its modes forbid writing and the ingest process cannot override them (as
root it runs without the capabilities that bypass file modes).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import bm25s
import pytest
from chromadb.api.models.Collection import Collection
from chromadb.errors import InternalError

from app import cli as cli_module
from kb import embcache
from kb import index as index_module
from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.lexical import LexicalIndex
from kb.retriever import retrieve
from kb.settings import Settings
from tests.fakes import FakeEmbedder
from tests.faults.test_kill_server_store import ROOT, assert_whole, full_state
from tests.kb.test_indexer import PARAS, write_corpus

BACKENDS = ["embedded", pytest.param("server", marks=pytest.mark.integration)]
QUERIES = ["relocation programme households", "education support students",
           "microfinance loans collateral", "medical insurance"]
ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
CHROMA_FULL = ("Query error: Database error: error returned from database: (code: 13) "
               "database or disk is full")


def _fsync_enospc(fd: int) -> None:
    raise OSError(errno.ENOSPC, ENOSPC)


def _bm25_save_enospc(self: bm25s.BM25, save_dir: str, **kwargs: object) -> None:
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    part = Path(save_dir) / "data.csc.index.npy"
    part.write_bytes(b"\x93NUMPY partial")
    raise OSError(errno.ENOSPC, ENOSPC, str(part))


def _chroma_full(self: Collection, *args: object, **kwargs: object) -> None:
    raise InternalError(CHROMA_FULL)


def _cache_full(self: object, *args: object, **kwargs: object) -> None:
    raise sqlite3.OperationalError("database or disk is full")


# where the disk fills -> (what to patch, the cause the message must give)
FAULTS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str]] = {
    "catalog": (lambda mp: mp.setattr(os, "fsync", _fsync_enospc), ENOSPC),
    "bm25": (lambda mp: mp.setattr(bm25s.BM25, "save", _bm25_save_enospc), ENOSPC),
    "chroma": (lambda mp: mp.setattr(Collection, "upsert", _chroma_full), "disk is full"),
    "cache": (lambda mp: mp.setattr(embcache.EmbeddingCache, "put_many", _cache_full),
              "disk is full"),
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "server":
        url = request.getfixturevalue("chroma_server").new_url()
        return settings.model_copy(update={"chroma_url": url})
    return settings


def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`kb ingest` in this process with the fake embedders: (exit status, error lines)."""
    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    monkeypatch.setattr(index_module, "get_embedder", lambda name, batch_size=32: fakes[name])
    if settings.chroma_url:
        monkeypatch.setenv("KB_CHROMA_URL", settings.chroma_url)
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main(["--data-dir", str(settings.data_dir), "--corpus-dir",
                         str(settings.corpus_dir), "ingest", "--quiet"])
    err = capsys.readouterr().err
    return int(exit_info.value.code or 0), [ln for ln in err.splitlines() if ln.startswith("error")]


def rankings(settings: Settings) -> dict[str, list[str]]:
    kbase = KnowledgeBase(settings, embedders={"minilm": FakeEmbedder("minilm"),
                                               "e5": FakeEmbedder("e5")})
    return {q: [h.chunk.chunk_id for h in retrieve(q, kbase)] for q in QUERIES}


def snapshot(settings: Settings) -> tuple[dict[str, object], dict[str, list[str]]]:
    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    return full_state(KnowledgeBase(settings, embedders=fakes)), rankings(settings)


def change_corpus(corpus: Path) -> None:
    (corpus / "alpha.txt").write_text(PARAS["alpha.txt"] + "\nA paragraph about dibao.\n")
    (corpus / "delta.txt").write_text("Delta Review\n\nWorkshops employed relocated people.\n")


# Every fault with the embedded store; with the server, the two whose handling differs (the
# server's disk is full; the catalog fails after the server took the new vectors).
CASES = [("embedded", fault) for fault in FAULTS] + [
    pytest.param("server", fault, marks=pytest.mark.integration) for fault in ("catalog", "chroma")
]


@pytest.mark.parametrize(("backend", "fault"), CASES, indirect=["backend"])
def test_disk_full_during_ingest(backend: Settings, fault: str, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_corpus(backend.corpus_dir)
    assert run_cli(backend, monkeypatch, capsys) == (0, [])
    before = snapshot(backend)
    old_bm25 = LexicalIndex.load(KnowledgeBase(backend).lexical_dir)
    assert old_bm25 is not None
    change_corpus(backend.corpus_dir)

    patch, cause = FAULTS[fault]
    with monkeypatch.context() as mp:
        patch(mp)
        status, errors = run_cli(backend, monkeypatch, capsys)
        assert status == 1
        assert len(errors) == 1, errors
        where = backend.chroma_url if fault == "chroma" and backend.chroma_url else \
            str(backend.data_dir)
        assert errors[0].startswith(f"error: {where}: ingest stopped"), errors[0]
        assert cause in errors[0]
        if fault == "bm25":  # readers keep answering with BM25 rebuilt in memory
            assert rankings(backend)[QUERIES[0]]

    if fault == "bm25":
        # Every document was committed before BM25 failed: the index is the new one, whole,
        # and the previous BM25 files on disk are untouched.
        reloaded = LexicalIndex.load(KnowledgeBase(backend).lexical_dir)
        assert reloaded is not None and reloaded.stamp == old_bm25.stamp
        state, _ = snapshot(backend)
        assert "delta" in state["docs"] and state["bm25"] == state["catalog"]
    else:
        assert snapshot(backend) == before  # nothing half-written, same answers
    assert_whole(KnowledgeBase(backend, embedders={"minilm": FakeEmbedder("minilm"),
                                                   "e5": FakeEmbedder("e5")}))

    assert run_cli(backend, monkeypatch, capsys) == (0, [])  # space freed: the run completes
    state, _ = snapshot(backend)
    assert "delta" in state["docs"] and state["bm25"] == state["catalog"]


def set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o755 if path.is_dir() else 0o644) if writable else
                       (0o555 if path.is_dir() else 0o444))


def unprivileged() -> list[str]:
    """A command prefix under which file modes bind: nothing for a normal user; for root,
    setpriv drops the capabilities that bypass them (root keeps its uid, so the interpreter
    under /root stays reachable)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot make a directory "
                    "read-only for this process")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]


@pytest.mark.integration
def test_read_only_data_directory(backend: Settings) -> None:
    """A real read-only data directory: the ingest process cannot write it."""
    write_corpus(backend.corpus_dir)
    fakes = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    assert ingest(KnowledgeBase(backend, embedders=fakes), progress=False).ok
    before = snapshot(backend)
    change_corpus(backend.corpus_dir)

    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    if backend.chroma_url:
        env["KB_CHROMA_URL"] = backend.chroma_url
    command = [*unprivileged(), sys.executable, "-m", "tests.faults.run_ingest", "0",
               "--data-dir", str(backend.data_dir), "--corpus-dir", str(backend.corpus_dir),
               "ingest", "--quiet"]
    set_writable(backend.data_dir, False)
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        set_writable(backend.data_dir, True)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith(f"error: {backend.data_dir}: ingest stopped"), errors[0]
    assert any(c in errors[0].lower() for c in ("permission denied", "readonly", "read-only",
                                                "unable to open")), errors[0]
    assert snapshot(backend) == before
