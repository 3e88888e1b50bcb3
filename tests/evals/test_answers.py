"""The answer evaluator, on a fake answerer (no models)."""

from __future__ import annotations

from evals.answers import evaluate_answers, fact_found, format_answer_table, judge_citations
from evals.gold import Evidence, GoldItem

PASSAGE = "In 2011 the standard was raised to RMB2,300, and the poor population was 122 million."


def item(qid: str, answerable: bool, facts: tuple[str, ...] = ()) -> GoldItem:
    evidence = (Evidence("001.txt", "122 million"),) if answerable else ()
    return GoldItem(qid, f"question {qid}", answerable, facts, evidence, "fact-number")


def reply(text: str, sentence: str, abstained: bool = False, ms: float = 10.0) -> dict:
    return {
        "answer": text, "abstained": abstained, "evidence": 0.5,
        "sentences": [] if abstained else [{"text": sentence, "citations": [1, 7]}],
        "citations": [{"n": 1, "passage": PASSAGE}], "timings_ms": {"total": ms},
    }


def test_fact_found_accepts_alternatives_case_insensitively() -> None:
    assert fact_found("122 Million | 166 million", "there were 122 million poor")
    assert not fact_found("166 million", "there were 122 million poor")


def test_judge_citations_counts_unknown_ids_as_unsupported() -> None:
    good, total, supported, sentences = judge_citations(
        reply("", "In 2011 the poor population was 122 million."))
    assert (good, total, supported, sentences) == (1, 2, 1, 1)


def test_evaluate_answers_metrics() -> None:
    answers = {
        "question q1": reply("122 million [1]", "In 2011 the poor population was 122 million."),
        "question q2": reply("The poor were 999 million [1]", "The poor were 999 million."),
        "question q3": reply("The documents do not say.", "", abstained=True, ms=30.0),
        "question q4": reply("Some answer [1]", "The standard was raised to RMB2,300."),
    }
    items = [item("q1", True, ("122 million",)), item("q2", True, ("122 million",)),
             item("q3", False), item("q4", False)]
    result = evaluate_answers(items, lambda q: answers[q], name="fake")
    m = result["metrics"]
    assert m["key_fact_recall"] == 0.5
    assert m["refusal_recall"] == 0.5 and m["refusal_precision"] == 1.0
    assert m["answered_recall"] == 1.0
    assert m["citation_recall"] == round(2 / 3, 4)  # q2's invented figure is unsupported
    assert result["abstention"]["unanswerable"] == [0.5, 0.5]
    assert result["latency_ms"]["p50"] == 10.0
    assert "fake" in format_answer_table([result])
