from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from kb.settings import Settings  # noqa: E402
from tests.fakes import FakeEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Every data directory comes from tmp_path; nothing writes into the working tree."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Settings(data_dir=tmp_path / "data", corpus_dir=corpus)


@pytest.fixture
def fake_embedders() -> dict[str, FakeEmbedder]:
    return {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}


@pytest.fixture(scope="session")
def real_kb(tmp_path_factory: pytest.TempPathFactory):
    """The real corpus ingested once with the real embedders (slow: ~2 minutes on 2 cores)."""
    from kb.index import KnowledgeBase
    from kb.indexer import ingest

    root = tmp_path_factory.mktemp("realkb")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    kbase = KnowledgeBase(Settings(data_dir=root / "data", corpus_dir=corpus))
    report = ingest(kbase, progress=False)
    assert report.ok, report.errors
    return kbase


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """One real `chroma run` on a free loopback port for the session, stopped at the end even
    when tests fail; each test takes a database of its own with `chroma_server.new_url()`."""
    from tests.chroma_server import ChromaServer

    with ChromaServer(tmp_path_factory.mktemp("chroma") / "db") as server:
        yield server
