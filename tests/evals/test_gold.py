import json

from evals.gold import Evidence, GoldItem, check_evidence, load_gold


def _row(**over):
    row = {
        "id": "q1",
        "question": "What are the two assurances?",
        "answerable": True,
        "key_facts": ["food and clothing", "medical | health care"],
        "evidence": [{"doc": "a.txt", "quote": "food and clothing"}],
        "type": "definition",
        "notes": "n",
    }
    row.update(over)
    return json.dumps(row)


def test_load_gold_reports_malformed_lines_and_keeps_the_rest(tmp_path):
    bad = json.loads(_row(id="q2"))
    del bad["question"]
    lines = [
        _row(),
        json.dumps(bad),
        "{not json",
        "",
        _row(id="q3", answerable=False, evidence=[], key_facts=[], type="unanswerable"),
        _row(id="q1"),
        _row(id="q4", evidence=[]),
    ]
    path = tmp_path / "dev.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    items, errors = load_gold(path)

    assert [item.id for item in items] == ["q1", "q3"]
    assert errors[0] == "dev.jsonl line 2: missing field 'question'"
    assert errors[1].startswith("dev.jsonl line 3: invalid JSON")
    assert errors[2].startswith("dev.jsonl line 6: duplicate id 'q1'")
    assert errors[3] == "dev.jsonl line 7: answerable question has no evidence"
    assert len(errors) == 4
    first = items[0]
    assert first == GoldItem(
        id="q1",
        question="What are the two assurances?",
        answerable=True,
        key_facts=("food and clothing", "medical | health care"),
        evidence=(Evidence("a.txt", "food and clothing"),),
        type="definition",
        notes="n",
    )
    assert first.fact_alternatives() == [("food and clothing",), ("medical", "health care")]


def test_check_evidence_collapses_whitespace(tmp_path):
    (tmp_path / "a.txt").write_text("Food  and\nclothing are assured.", encoding="utf-8")
    ok = GoldItem("q1", "?", True, (), (Evidence("a.txt", "Food and clothing"),), "definition")
    wrong = GoldItem("q2", "?", True, (), (Evidence("a.txt", "food and clothing"),), "definition")
    missing = GoldItem("q3", "?", True, (), (Evidence("b.txt", "x"),), "definition")
    problems = check_evidence([ok, wrong, missing], tmp_path)
    assert problems == [
        "q2 evidence[0]: quote not found verbatim in a.txt",
        f"q3 evidence[0]: no file 'b.txt' in {tmp_path}",
    ]
