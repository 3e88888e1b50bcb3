"""Retrieval: hybrid fusion, aliases, filters in both paths, multilingual, odd queries."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
import pytest

from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.records import Filters
from kb.retriever import BM25, DENSE, FULL, question_parts, retrieve
from kb.settings import Settings
from tests.fakes import FakeEmbedder

DOCS = {
    "white.txt": "White Paper\n\nChina adopted the Measures for Poverty Eradication: "
    "developing production, relocation, eco-compensation, education and social assistance.\n",
    "figures.txt": "Figures Report\n\nBy the end of 2020 some 775,000 officials had served in "
    "villages. Their work was reviewed every year.\n",
    "health.txt": "Health Study\n\nBasic medical insurance covered the registered poor. Clinics "
    "were built in every township, and doctors visited villages every month.\n",
    "schools.md": "# Schools Study\n\nEducation support reached students in poor counties. "
    "Teachers were trained and boarding schools were built.\n",
}


class DigitBlindEmbedder(FakeEmbedder):
    """Hashed bag of words that cannot see numbers: whatever it ranks for "775,000" is luck."""

    def _vector(self, text: str) -> np.ndarray:
        return super()._vector(re.sub(r"\d", " ", text))


@pytest.fixture
def small_kb(settings: Settings) -> KnowledgeBase:
    for name, text in DOCS.items():
        (settings.corpus_dir / name).write_text(text, encoding="utf-8")
    (settings.corpus_dir / "aliases.toml").write_text(
        '[[group]]\nconcept = "Five batches"\n'
        'names = ["five batches", "Measures for Poverty Eradication"]\n'
    )
    embedders = {"minilm": DigitBlindEmbedder("minilm"), "e5": DigitBlindEmbedder("e5")}
    kbase = KnowledgeBase(settings, embedders=embedders)
    assert ingest(kbase, progress=False).ok
    return kbase


def sources(hits: Sequence) -> list[str]:
    return [h.chunk.source for h in hits]


def test_fusion_keeps_a_passage_only_bm25_finds(small_kb: KnowledgeBase) -> None:
    query = "775,000"
    assert sources(retrieve(query, small_kb, k=1, config=BM25)) == ["figures.txt"]
    hits = retrieve(query, small_kb, k=2, config=FULL)
    assert "figures.txt" in sources(hits)
    figures = next(h for h in hits if h.chunk.source == "figures.txt")
    assert figures.scores["bm25_rank"] == 1


def test_alias_query_finds_the_passage_that_uses_the_other_name(small_kb) -> None:
    """The document says "Measures for Poverty Eradication"; the question says
    "five batches". Only the alias table links them (the fake embedder can't)."""
    hits = retrieve("What are the five batches?", small_kb, k=1, config=FULL)
    assert sources(hits) == ["white.txt"]
    no_alias = retrieve("What are the five batches?", small_kb, k=4, config=BM25)
    assert "white.txt" not in sources(no_alias)


@pytest.mark.parametrize("config", [DENSE, BM25, FULL], ids=lambda c: c.name)
def test_filter_applies_in_dense_and_lexical_paths(small_kb: KnowledgeBase, config) -> None:
    query = "villages officials medical schools"
    unfiltered = retrieve(query, small_kb, k=10, config=config)
    assert len(set(sources(unfiltered))) > 1
    only = Filters(doc_ids=("health",))
    hits = retrieve(query, small_kb, filters=only, k=10, config=config)
    assert hits and set(sources(hits)) == {"health.txt"}


def test_kind_and_year_filters(small_kb: KnowledgeBase) -> None:
    assert retrieve("villages", small_kb, filters=Filters(kinds=("glossary",))) == []
    assert retrieve("villages", small_kb, filters=Filters(year_from=2030)) == []


@pytest.mark.parametrize("query", ["", "   ", "?!?", "x" * 10_000, "poverty " * 2000])
def test_empty_and_huge_queries_return_cleanly(small_kb: KnowledgeBase, query: str) -> None:
    hits = retrieve(query, small_kb, k=3)
    assert isinstance(hits, list) and len(hits) <= 3


def test_question_parts_split_multi_part_questions() -> None:
    assert question_parts("How many were relocated? And when did the programme end?") == [
        "How many were relocated?", "And when did the programme end?"
    ]
    assert question_parts("What are the five batches?") == []


def test_search_batch_cli(small_kb: KnowledgeBase, tmp_path, capsys, monkeypatch) -> None:
    from app import cli as cli_module
    from kb import index as index_module

    fakes = small_kb._embedders
    monkeypatch.setattr(index_module, "get_embedder", lambda name, batch_size=32: fakes[name])
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        json.dumps({"id": "a", "question": "775,000 officials"}) + "\n"
        + json.dumps({"id": "b", "question": "boarding schools"}) + "\n"
    )
    s = small_kb.settings
    with pytest.raises(SystemExit) as done:
        cli_module.main(["--data-dir", str(s.data_dir), "--corpus-dir", str(s.corpus_dir),
                         "search", "--batch", str(batch), "--json", "--k", "2"])
    assert done.value.code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    first = lines[0]["passages"][0]
    assert {"chunk_id", "source", "section", "page", "score", "text"} <= set(first)
    assert first["source"] == "figures.txt"
    assert lines[1]["passages"][0]["source"] == "schools.md"


# ---- the real corpus and the real embedders ------------------------------------------------


@pytest.mark.slow
def test_real_glossary_alias_and_french(real_kb: KnowledgeBase) -> None:
    hits = retrieve("What are the Five Targeted Measures?", real_kb, k=5)
    texts = " ".join(h.chunk.text.lower() for h in hits)
    assert "five batches" in texts or "five measures for poverty eradication" in texts

    hits = retrieve("Que sont les « cinq lots » de mesures de lutte contre la pauvreté ?",
                    real_kb, k=5)
    assert any(h.chunk.title == "Five Batches" or "five batches" in h.chunk.text.lower()
               or "Five Measures" in h.chunk.text for h in hits)


@pytest.mark.slow
def test_real_document_named_in_question_is_favoured(real_kb: KnowledgeBase) -> None:
    hits = retrieve("According to Hou Junqi, what are the stages of poverty alleviation?",
                    real_kb, k=3)
    assert hits[0].chunk.source == "004_34875dc8bc997323.txt"


@pytest.mark.slow
def test_real_comparative_question_gets_several_documents(real_kb: KnowledgeBase) -> None:
    hits = retrieve("Do the sources agree on how many people were relocated?", real_kb, k=6)
    assert len({h.chunk.doc_id for h in hits}) >= 2


def test_each_retrievers_first_choice_stays_in_the_top() -> None:
    from kb.retriever import _guarantee_firsts

    order = [f"c{i}" for i in range(10)]
    rankings = [[("c0", 1.0)], [("c8", 9.0), ("c1", 1.0)], []]
    out = _guarantee_firsts(list(order), rankings, within=5)
    assert out.index("c8") == 4 and out[:4] == ["c0", "c1", "c2", "c3"]
    assert sorted(out) == sorted(order)
    assert _guarantee_firsts(list(order), rankings, within=10) == order
