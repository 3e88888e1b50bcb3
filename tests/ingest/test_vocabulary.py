"""ingest/vocabulary.py: the corpus words, ranked, that the lexicon must cover."""

from __future__ import annotations

from ingest.vocabulary import Term, main, paragraphs, singular, uncovered, vocabulary


def test_singular_only_when_the_corpus_has_the_singular() -> None:
    known = {"policy", "village", "new", "proces"}
    assert singular("policies", known) == "policy"
    assert singular("villages", known) == "village"
    assert singular("news", known) == "news"  # a word of its own, not the plural of "new"
    assert singular("process", known) == "process"  # "ss" is no plural
    assert singular("teachers", known) == "teachers"  # "teacher" never occurs


def test_paragraphs_split_on_blank_lines_and_join_hyphenated_breaks() -> None:
    text = "Targeted pov-\nerty alleviation.\n\n  \nSecond para-\n  graph."
    assert paragraphs(text) == ["Targeted poverty alleviation.", "  \nSecond paragraph."[3:]]


def test_vocabulary_ranks_by_paragraphs_folds_plurals_drops_stop_words_and_numbers() -> None:
    texts = [
        "The villages of the county.\n\nA village school, 2020.\n\nThe county and its villages.",
        "Poverty in the village.",
    ]
    terms = {t.word: t for t in vocabulary(texts)}
    assert terms["village"] == Term("village", paragraphs=4, occurrences=4)
    assert terms["county"].paragraphs == 2
    assert "villages" not in terms and "the" not in terms and "its" not in terms
    assert not any(w.isdigit() for w in terms)
    ranked = [t.word for t in vocabulary(texts)]
    assert ranked[:2] == ["village", "county"]


def test_uncovered_compares_stems_per_language() -> None:
    terms = [Term("training", 3, 3), Term("market", 2, 2), Term("tea", 1, 1)]
    lexicon = {"fr": {"formation": "train", "marche": "market"}, "es": {"te": "tea"}}
    assert uncovered(terms, lexicon) == {"fr": ["tea"], "es": ["training", "market"]}


def test_main_prints_ranked_words_and_missing_words(tmp_path, capsys) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Tea farmers.\n\nTea and pigs.\n\nPig farmers sell tea.")
    main(["--corpus", str(corpus), "--top", "2"])
    # "pigs" folds into "pig" (which occurs); "farmers" stays ("farmer" never occurs); ties: a-z
    assert capsys.readouterr().out.splitlines() == ["1\ttea\t3\t3", "2\tfarmers\t2\t2"]
    lexicon = tmp_path / "lexicon.toml"
    lexicon.write_text('[fr]\nthe = "tea"\n')
    main(["--corpus", str(corpus), "--top", "3", "--lexicon", str(lexicon)])
    assert capsys.readouterr().out.strip() == "[fr] 2 of 3 not reached: farmers pig"
