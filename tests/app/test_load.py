"""The load tool against the launched app (every simulated user gets answers, no errors), the
reply check it relies on, and the thread safety that concurrent users rely on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.render import ERROR_MESSAGE
from evals.load import check_reply, run_load, write_load_report
from kb.answer import REFUSAL, answer


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]


def test_check_reply_accepts_cited_answers_and_abstentions_only() -> None:
    assert check_reply(_chat("Some 9.6 million people were relocated. [1]")) == (True, False, "")
    assert check_reply(_chat(f"**Not found in the documents.** {REFUSAL}"))[:2] == (True, True)
    assert not check_reply(_chat(ERROR_MESSAGE.format(kind="KeyError")))[0]
    assert not check_reply(_chat("*Searching the documents…*"))[0]
    assert not check_reply(_chat("An answer without any citation."))[0]
    assert not check_reply([{"role": "user", "content": "q"}])[0]
    assert not check_reply(None)[0]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "Cited. [1]"}]}]
    assert check_reply(parts)[0]


@pytest.mark.integration
@pytest.mark.slow
def test_three_users_and_a_new_user_all_get_answers(live_app: str, tmp_path: Path) -> None:
    result = run_load(live_app, users=3, seconds=6, probe_every=2, follow_share=0.5)
    summary = result.summary()
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["users_without_answers"] == 0 and summary["ok"] >= 3
    assert {r.kind for r in result.records if r.user >= 0} <= {"question", "follow-up"}
    probe = summary["probe"]
    assert probe["n"] >= 1 and probe["ok"] == probe["n"], probe["errors"]
    write_load_report([result], tmp_path)
    md = (tmp_path / "bench.md").read_text()
    assert "<!-- load:start -->" in md and "## Load test" in md and "**0**" in md
    assert (tmp_path / "load.png").exists() and (tmp_path / "load.json").exists()


@pytest.mark.slow
def test_answers_computed_in_four_threads_equal_the_sequential_ones(real_kb) -> None:  # type: ignore[no-untyped-def]
    questions = [
        "What are the five batches?",
        "How many people were relocated?",
        "Qu'est-ce que la lutte ciblée contre la pauvreté ?",
        "What was the poverty line in Kenya in 2019?",
        "What is a Fish Scale Book?",
        "¿Cuántos funcionarios fueron enviados a las aldeas pobres?",
        "How did east-west collaboration work?",
        "What are poverty alleviation workshops?",
    ]

    def key(question: str) -> tuple[object, ...]:
        a = answer(question, real_kb)
        return (a.text, a.abstained, tuple(c.chunk.chunk_id for c in a.citations))

    sequential = [key(q) for q in questions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(key, questions * 2))
    assert concurrent == sequential * 2
