"""The naive pipeline's plumbing, with a fake embedder (the real run is `python -m evals.retrieval
--naive`; its numbers need the model and take ~20 s)."""

import hashlib
import math
import re

import pytest

from evals.gold import Evidence, GoldItem
from evals.retrieval import evaluate_retrieval, main

llama_index_core = pytest.importorskip("llama_index.core")
from llama_index.core.embeddings import BaseEmbedding  # noqa: E402

from evals.naive import build_naive  # noqa: E402


class HashedBagOfWords(BaseEmbedding):
    """Deterministic and NOT constant, so ranking still means something (STYLE.md)."""

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * 64
        for word in re.findall(r"\w+", text.lower()):
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.fixture(autouse=True)
def _restore_llama_index_settings():
    # build_naive sets llama-index's process-wide Settings; don't leak the fake into other tests.
    settings = llama_index_core.Settings
    saved = (settings._embed_model, settings._llm)
    yield
    settings._embed_model, settings._llm = saved


def test_build_naive_returns_sources_and_plain_text(tmp_path):
    (tmp_path / "a.txt").write_text("Mushrooms grow on juncao grass in Fiji.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Relocation moved millions of people.", encoding="utf-8")
    (tmp_path / "manifest.toml").write_text("# not a seed\n", encoding="utf-8")

    search = build_naive(tmp_path, k=2, embed_model=HashedBagOfWords(model_name="fake"))
    hits = search("juncao grass mushrooms")

    assert [hit["source"] for hit in hits] == ["a.txt", "b.txt"]
    assert hits[0]["text"] == "Mushrooms grow on juncao grass in Fiji."  # no metadata prefix
    item = GoldItem(
        "q1", "juncao grass mushrooms", True, (), (Evidence("a.txt", "juncao grass"),), "x"
    )
    assert evaluate_retrieval([item], search, k=2, name="naive-fake")["metrics"]["hit@1"] == 1.0


def test_cli_needs_a_configuration():
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
