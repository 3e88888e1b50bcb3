"""evaluate_retrieval against a fake search with known ranks, so the ranx plumbing is checked."""

import pytest

from evals.gold import Evidence, GoldItem
from evals.report import format_table
from evals.retrieval import evaluate_retrieval

DOC = "a.txt"


def _item(qid, quotes, type_="definition", answerable=True):
    evidence = tuple(Evidence(DOC, q) for q in quotes)
    return GoldItem(qid, f"question {qid}", answerable, (), evidence, type_)


def _filler(n):
    return [
        {"chunk_id": f"f{n}-{i}", "source": DOC, "text": f"unrelated filler {i}"} for i in range(n)
    ]


ITEMS = [
    # evidence at rank 1
    _item("q1", ["alpha beta gamma"]),
    # evidence at rank 3; second evidence item never retrieved
    _item("q2", ["delta epsilon zeta", "never retrieved anywhere at all"]),
    # nothing relevant retrieved (right text, wrong source)
    _item("q3", ["eta theta iota"], type_="non-english"),
    # two evidence items, both found: ranks 2 and 6
    _item("q4", ["kappa lambda mu", "nu xi omicron"], type_="non-english"),
    # unanswerable: skipped
    _item("q5", [], type_="unanswerable", answerable=False),
]

RESULTS = {
    "question q1": [{"chunk_id": "c1", "source": DOC, "text": "Alpha, beta; gamma!"}, *_filler(9)],
    "question q2": [
        *_filler(2),
        {"chunk_id": "c2", "source": DOC, "text": "x delta epsilon zeta y"},
        *_filler(7),
    ],
    "question q3": [{"chunk_id": "c3", "source": "b.txt", "text": "eta theta iota"}, *_filler(9)],
    "question q4": [
        *_filler(1),
        {"chunk_id": "c4", "source": DOC, "text": "kappa lambda mu"},
        *_filler(3)[1:],  # ids f3-1, f3-2 (distinct from f1-0)
        {"chunk_id": "c4", "source": DOC, "text": "kappa lambda mu"},  # repeat: dropped
        {"chunk_id": "c5", "source": DOC, "text": "nu xi omicron"},  # so rank 5, not 6
        *_filler(4),
        {"chunk_id": "c6", "source": DOC, "text": "beyond k: alpha"},  # rank 11, cut at k=10
    ],
    "question q5": [],
}


@pytest.fixture(scope="module")
def result():
    calls = []

    def search(question):
        calls.append(question)
        return RESULTS[question]

    out = evaluate_retrieval(ITEMS, search, k=10, name="fake", config={"x": 1})
    out["_calls"] = calls
    return out


def test_counts_only_answerable_and_warms_up(result):
    assert result["n"] == 4
    assert result["n_unanswerable_skipped"] == 1
    assert len(result["_calls"]) == 5  # one warm-up + four answerable questions
    assert "question q5" not in result["_calls"]


def test_per_question_ranks(result):
    rows = {row["id"]: row for row in result["per_question"]}
    assert {q: rows[q]["hit_rank"] for q in rows} == {"q1": 1, "q2": 3, "q3": None, "q4": 2}
    assert rows["q2"]["matched_evidence"] == 1 and rows["q2"]["evidence"] == 2
    assert rows["q4"]["matched_evidence"] == 2


def test_known_metric_values(result):
    m = result["metrics"]
    assert m["hit@1"] == 0.25
    assert m["hit@5"] == 0.75
    assert m["hit@10"] == 0.75
    assert m["all_evidence@10"] == 0.5  # q1 and q4
    assert m["mrr@10"] == pytest.approx(round((1 + 1 / 3 + 0 + 1 / 2) / 4, 4))
    assert result["score"] == m["hit@5"]
    assert result["individual_scores"] == [1, 1, 0, 1]


def test_ndcg_counts_missing_evidence(result):
    import math

    dcg_q2 = 1 / math.log2(3 + 1)
    idcg_q2 = 1 / math.log2(2) + 1 / math.log2(3)
    # q2: one relevant chunk at rank 3; the unmatched second quote still counts in the ideal.
    # q4: c4 at rank 2, c5 at rank 5 (the repeated c4 dropped, the rest move up).
    dcg_q4 = 1 / math.log2(2 + 1) + 1 / math.log2(5 + 1)
    idcg_q4 = idcg_q2
    expected = (1 + dcg_q2 / idcg_q2 + 0 + dcg_q4 / idcg_q4) / 4
    assert result["metrics"]["ndcg@10"] == pytest.approx(expected, abs=1e-4)


def test_per_type_and_table(result):
    non_english = result["per_type"]["non-english"]
    assert non_english["n"] == 2
    assert non_english["hit@5"] == 0.5
    assert "unanswerable" not in result["per_type"]
    assert set(result["latency_ms"]) == {"p50", "p95"}
    assert result["config_hash"] and len(result["config_hash"]) == 12
    table = format_table([result])
    assert table.splitlines()[2].startswith("| fake | 4 | 0.250 | 0.750 | 0.750 | 0.500 |")
    assert "| 0.500 |" in table  # non-English hit@5


def test_no_answerable_items_is_an_error():
    with pytest.raises(ValueError):
        evaluate_retrieval([ITEMS[-1]], lambda q: [], name="empty")
