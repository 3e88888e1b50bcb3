"""The answer metrics on hand-built answers whose right values are known: ALCE citation
precision, strict gold-citation precision, grounded fact recall, refusal F1, per-type and
per-document breakdowns, per-stage latency, and a pluggable judge."""

from __future__ import annotations

from typing import Any

from evals.answers import (
    NO_DOC,
    answer_metrics,
    evaluate_answers,
    fact_evidence,
    grounded_facts,
    judge_sentences,
    score_answer,
)
from evals.gold import Evidence, GoldItem

GOLD_PASSAGE = "In 2011 the national poverty line was raised to RMB2,300 per person per year."
OTHER_PASSAGE = "The poor rural population was 122 million at the end of 2011."
UNRELATED = "Relocation moved 9.6 million people out of inhospitable areas."
EV = Evidence("a.txt", "the national poverty line was raised to RMB2,300")


def cite(n: int, passage: str, source: str = "a.txt") -> dict[str, Any]:
    return {"n": n, "source": source, "passage": passage, "quote": passage[:20]}


def reply(sentences: list[tuple[str, list[int]]], citations: list[dict[str, Any]],
          abstained: bool = False, answer: str | None = None,
          timings: dict[str, float] | None = None) -> dict[str, Any]:
    text = answer if answer is not None else " ".join(s for s, _ in sentences)
    return {"answer": text, "abstained": abstained, "evidence": 0.5,
            "sentences": [{"text": s, "citations": c} for s, c in sentences],
            "citations": citations,
            "timings_ms": timings or {"retrieve": 10.0, "answer": 5.0, "total": 15.0}}


def item(qid: str = "q1", answerable: bool = True, facts: tuple[str, ...] = (),
         evidence: tuple[Evidence, ...] = (EV,), type_: str = "fact-number") -> GoldItem:
    return GoldItem(qid, f"question {qid}", answerable, facts,
                    evidence if answerable else (), type_)


def test_alce_precision_irrelevant_citation_is_imprecise() -> None:
    # [1] supports the sentence alone; [2] neither supports it nor is needed.
    verdicts = judge_sentences(reply(
        [("In 2011 the national poverty line was raised to RMB2,300.", [1, 2])],
        [cite(1, GOLD_PASSAGE), cite(2, UNRELATED)]))
    assert verdicts[0]["supported"] and verdicts[0]["precise"] == [True, False]


def test_alce_precision_citations_needed_together_are_both_precise() -> None:
    # The year and the line come from [1], the 122 million from [2]: neither alone suffices.
    sentence = "In 2011 the poverty line was raised to RMB2,300 and the poor numbered 122 million."
    verdicts = judge_sentences(reply([(sentence, [1, 2])],
                                     [cite(1, GOLD_PASSAGE), cite(2, OTHER_PASSAGE)]))
    assert verdicts[0]["supported"] and verdicts[0]["precise"] == [True, True]


def test_alce_unsupported_sentence_makes_every_citation_imprecise() -> None:
    verdicts = judge_sentences(reply([("In 2015 the line was RMB4,000.", [1, 9])],
                                     [cite(1, GOLD_PASSAGE)]))
    assert not verdicts[0]["supported"] and verdicts[0]["precise"] == [False, False]
    assert any("number" in r for r in verdicts[0]["reasons"])


def test_strict_gold_citation_precision_counts_cited_passages_holding_a_gold_quote() -> None:
    result = reply([("In 2011 the national poverty line was raised to RMB2,300.", [1]),
                    ("The poor rural population was 122 million.", [2]),
                    ("Relocation moved 9.6 million people.", [3])],
                   [cite(1, GOLD_PASSAGE), cite(2, OTHER_PASSAGE),
                    cite(3, GOLD_PASSAGE, source="b.txt")])  # right words, wrong document
    row = score_answer(item(), result)
    assert (row["gold_citations_matched"], row["gold_citations"]) == (1, 3)
    assert answer_metrics([row])["gold_citation_precision"] == round(1 / 3, 4)
    assert [c["gold_match"] for c in row["cited"]] == [True, False, False]


def test_grounded_fact_needs_a_sentence_citing_the_facts_gold_quote() -> None:
    facts = ("RMB2,300", "122 million", "9.6 million")
    result = reply(
        [("In 2011 the national poverty line was raised to RMB2,300.", [1]),  # grounded
         ("The poor rural population was 122 million.", [2])],  # found, cites a non-gold passage
        [cite(1, GOLD_PASSAGE), cite(2, OTHER_PASSAGE)],
        answer="... RMB2,300 ... 122 million ... Note: 9.6 million moved.")  # 9.6 only in a note
    gold = item(facts=facts)
    assert grounded_facts(gold, result) == [True, False, False]
    row = score_answer(gold, result)
    assert (row["facts_found"], row["facts_grounded"]) == (3, 1)
    assert row["ungrounded_facts"] == ["122 million", "9.6 million"]
    metrics = answer_metrics([row])
    assert metrics["key_fact_recall"] == 1.0 and metrics["all_facts_rate"] == 1.0
    assert metrics["grounded_fact_recall"] == round(1 / 3, 4)


def test_fact_evidence_is_the_quote_holding_the_fact_else_all_quotes() -> None:
    a, b = Evidence("a.txt", "the line was RMB2,300"), Evidence("a.txt", "122 million poor")
    assert fact_evidence("122 Million | 120 million", (a, b)) == [b]
    assert fact_evidence("a paraphrase in neither", (a, b)) == [a, b]


def test_refusal_f1_and_answered_recall() -> None:
    rows = [
        score_answer(item("u1", False), reply([], [], abstained=True)),
        score_answer(item("u2", False), reply([], [], abstained=True)),
        score_answer(item("u3", False), reply([("Something.", [1])], [cite(1, UNRELATED)])),
        score_answer(item("a1", facts=("RMB2,300",)), reply([], [], abstained=True)),
        score_answer(item("a2", facts=("RMB2,300",)),
                     reply([("The line was raised to RMB2,300 in 2011.", [1])],
                           [cite(1, GOLD_PASSAGE)])),
    ]
    m = answer_metrics(rows)
    assert m["refusal_recall"] == round(2 / 3, 4) and m["refusal_precision"] == round(2 / 3, 4)
    assert m["refusal_f1"] == round(2 / 3, 4)
    assert m["answered_recall"] == 0.5
    assert m["key_fact_recall"] == 0.5  # the abstention scores 0
    assert rows[2]["problems"] == ["answered an unanswerable question",
                                   "1/1 sentences unsupported by their citations",
                                   "1/1 citations imprecise"]
    assert rows[3]["problems"] == ["abstained on an answerable question"]


def test_refusal_f1_is_zero_without_abstentions_and_undefined_without_unanswerables() -> None:
    answered = reply([("The line was RMB2,300 in 2011.", [1])], [cite(1, GOLD_PASSAGE)])
    m = answer_metrics([score_answer(item("u1", False), answered)])
    assert (m["refusal_recall"], m["refusal_precision"], m["refusal_f1"]) == (0.0, None, 0.0)
    m = answer_metrics([score_answer(item("a1"), answered)])
    assert m["refusal_recall"] is None and m["refusal_f1"] is None


def test_breakdowns_per_type_and_per_document_and_latency_per_stage() -> None:
    two_docs = (EV, Evidence("b.txt", "122 million"))
    items = [item("q1", facts=("RMB2,300",), evidence=two_docs, type_="comparison"),
             item("q2", facts=("RMB2,300",), type_="fact-number"),
             item("q3", False, type_="unanswerable")]
    answers = {
        "question q1": reply([("The line was raised to RMB2,300 in 2011.", [1])],
                             [cite(1, GOLD_PASSAGE)], timings={"retrieve": 10, "total": 20}),
        "question q2": reply([], [], abstained=True, timings={"retrieve": 30, "total": 40}),
        "question q3": reply([], [], abstained=True, timings={"retrieve": 50, "total": 60}),
    }
    result = evaluate_answers(items, lambda q: answers[q], name="fake")
    assert result["per_type"]["comparison"]["key_fact_recall"] == 1.0
    assert result["per_type"]["fact-number"]["key_fact_recall"] == 0.0
    assert result["per_type"]["unanswerable"]["refusal_recall"] == 1.0
    per_doc = result["per_doc"]
    assert set(per_doc) == {"a.txt", "b.txt", NO_DOC}
    assert (per_doc["a.txt"]["n"], per_doc["a.txt"]["key_fact_recall"]) == (2, 0.5)
    assert (per_doc["b.txt"]["n"], per_doc["b.txt"]["key_fact_recall"]) == (1, 1.0)
    assert per_doc[NO_DOC]["n"] == 1
    assert result["latency_ms_by_stage"]["retrieve"] == {"p50": 30.0, "p95": 48.0}
    assert list(result["latency_ms_by_stage"]) == ["retrieve", "total"]
    assert result["latency_ms"] == {"p50": 40.0, "p95": 58.0}


def test_a_judge_returning_bool_plugs_in() -> None:
    calls = []

    def strict_judge(sentence: str, passages: Any) -> bool:
        calls.append(sentence)
        return False  # rejects everything

    result = reply([("In 2011 the national poverty line was raised to RMB2,300.", [1])],
                   [cite(1, GOLD_PASSAGE)])
    row = score_answer(item(), result, judge=strict_judge)
    assert calls and row["sentences_supported"] == 0 and row["citations_precise"] == 0
