"""The extractive answer engine on the real corpus with the real models (slow)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from app.cli import cli
from kb.answer import REFUSAL, answer
from kb.verifier import verify

pytestmark = pytest.mark.slow

JSON_KEYS = {"id", "question", "answer", "abstained", "mode", "sentences", "citations",
             "passages", "timings_ms"}
CITATION_KEYS = {"n", "chunk_id", "doc_id", "source", "title", "published", "publisher",
                 "section", "page", "quote", "passage", "char_start", "char_end"}


def check_shape(obj: dict) -> None:
    assert JSON_KEYS <= set(obj)
    assert set(obj["timings_ms"]) >= {"retrieve", "answer", "total"}
    numbers = {c["n"] for c in obj["citations"]}
    for c in obj["citations"]:
        assert CITATION_KEYS <= set(c)
        assert c["quote"] and c["quote"] in c["passage"]
        start, end = c["quote_offsets"]
        assert c["passage"][start:end] == c["quote"]
        assert c["char_end"] - c["char_start"] == len(c["quote"])
    for s in obj["sentences"]:
        assert set(s) >= {"text", "citations", "supported"}
        assert s["citations"] and set(s["citations"]) <= numbers
        assert s["supported"] is True
    for p in obj["passages"]:
        assert set(p) >= {"chunk_id", "source", "score", "text"}


def test_five_batches_lists_all_five_measures_cited_to_glossary_or_white_paper(real_kb) -> None:
    result = answer("What are the five batches?", real_kb)
    assert not result.abstained
    text = result.text.lower()
    for measure in ("production", "relocation", "ecological compensation", "education",
                    "allowances"):
        assert measure in text, measure
    first = result.citations[result.sentences[0].citations[0] - 1]
    assert first.chunk.kind == "glossary" or first.document.doc_id == "whitepaper-2021"
    # Every shown sentence is an exact span of its cited passage and passes the verifier.
    for s in result.sentences:
        cited = [result.citations[n - 1] for n in s.citations]
        assert s.text in cited[0].chunk.text
        assert verify(s.text, [c.chunk.text for c in cited]).supported
    # The knowledge base's own database has the span at the stated document offsets.
    c = result.citations[0]
    doc_text = real_kb.catalog.texts[c.chunk.doc_id]
    assert doc_text[c.doc_start : c.doc_end] == c.quote


def test_a_question_the_documents_do_not_answer_abstains(real_kb) -> None:
    result = answer("What was the poverty line in Kenya in 2019?", real_kb)
    assert result.abstained
    assert result.text.startswith(REFUSAL)
    assert not result.sentences
    assert 1 <= len(result.citations) <= real_kb.settings.answer.closest_passages


def test_conflicting_figures_are_both_shown_with_source_and_date(real_kb) -> None:
    result = answer(
        "How many private enterprises took part in the 10,000 Enterprises Helping 10,000 "
        "Villages campaign?", real_kb)
    assert not result.abstained
    assert "127,000" in result.text and "110,000" in result.text
    note = next(n for n in result.notes if n.startswith("The sources differ"))
    assert re.search(r"\(.*20\d\d.*\).*\(.*20\d\d.*\)", note)  # each figure dated
    cited_docs = {c.document.doc_id for c in result.citations}
    assert len(cited_docs) >= 2


def test_three_turn_dialog_rewrites_follow_ups(real_kb) -> None:
    history: list = []
    first = answer("How many people were relocated from inhospitable areas?", real_kb)
    assert "9.6 million" in first.text
    history.append(first)
    second = answer("And how many resettlement communities were built?", real_kb,
                    history=history)
    assert "relocated" in second.query
    assert "35,000" in second.text or "communities" in second.text.lower()
    history.append(second)
    third = answer("What about schools?", real_kb, history=history)
    assert "relocated" in third.query
    assert not third.abstained
    assert "school" in third.text.lower()


def test_ask_json_shape_single_and_batch(real_kb, tmp_path) -> None:
    runner = CliRunner()
    data_dir = str(real_kb.settings.data_dir)
    corpus_dir = str(real_kb.settings.corpus_dir)
    out = runner.invoke(cli, ["--data-dir", data_dir, "--corpus-dir", corpus_dir, "ask",
                              "What is a Fish Scale Book?", "--json"])
    assert out.exit_code == 0, out.output
    check_shape(json.loads(out.output.strip().splitlines()[-1]))
    batch = tmp_path / "questions.jsonl"
    batch.write_text(
        json.dumps({"id": "a", "question": "What are the six precise measures?"}) + "\n"
        + json.dumps({"id": "b", "question": "How many officials from Kenya studied in "
                      "Beijing in 2019?"}) + "\n", encoding="utf-8")
    out = runner.invoke(cli, ["--data-dir", data_dir, "--corpus-dir", corpus_dir, "ask",
                              "--batch", str(batch), "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
    assert [r["id"] for r in rows] == ["a", "b"]
    for r in rows:
        check_shape(r)
    assert not rows[0]["abstained"] and rows[1]["abstained"]


def test_non_english_question_is_answered_in_english_with_a_note(real_kb) -> None:
    result = answer("Combien de personnes ont été relogées en Chine ?", real_kb)
    assert not result.abstained
    assert result.language != "en"
    assert any("English" in n for n in result.notes)
