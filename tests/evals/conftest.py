"""Fixtures of the eval-suite tests: a small knowledge base over the seed excerpts, built with
the fake embedders (fast) once per test module and only read, and the tiny gold set that goes
with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.settings import Settings
from tests.evals.gold_cases import fill_corpus, write_gold
from tests.fakes import FakeEmbedder


@pytest.fixture(scope="module")
def seed_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("seedkb")
    settings = Settings(data_dir=root / "data", corpus_dir=root / "corpus")
    settings.corpus_dir.mkdir()
    fill_corpus(settings.corpus_dir)
    embedders = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
    kbase = KnowledgeBase(settings, embedders=embedders)
    report = ingest(kbase, progress=False)
    assert report.ok, report.errors
    return kbase


@pytest.fixture
def tiny_gold(tmp_path: Path) -> Path:
    return write_gold(tmp_path / "tiny.jsonl")
