from hypothesis import given
from hypothesis import strategies as st

from evals.gold import Evidence
from evals.matching import longest_common_substring, matches, normalise

DOC = "001_699e285056daa501.txt"
QUOTE = 'The "Two Assurances and Three Guarantees" refers to food, clothing and housing.'


def test_normalise_collapses_punctuation_case_and_whitespace():
    assert normalise('  The "Two Assurances",\n\tand  THREE-guarantees! ') == (
        "the two assurances and three guarantees"
    )


def test_normalise_keeps_non_ascii_letters():
    assert normalise("Pobreza—extrema, «ÉTÉ»") == "pobreza extrema été"


def test_substring_after_normalisation_matches():
    passage = (
        "Intro text.  the two ASSURANCES and three guarantees refers to\n"
        "food, clothing and housing; more."
    )
    assert matches(DOC, passage, Evidence(DOC, QUOTE))


def test_different_source_never_matches():
    assert not matches("002_f990969d0c8cbb49.txt", QUOTE, Evidence(DOC, QUOTE))


def test_half_of_quote_in_passage_matches():
    quote = "a" * 10 + " " + "b" * 9  # normalised length 20
    assert matches(DOC, "xx " + "a" * 10 + " zz", Evidence(DOC, quote))  # LCS 11/20


def test_less_than_half_does_not_match():
    quote = "a" * 10 + " " + "b" * 9  # normalised length 20; needs 10 shared characters
    assert not matches(DOC, "xx " + "a" * 9 + "x zz", Evidence(DOC, quote))  # LCS 9 ("a"*9)
    assert matches(DOC, "xx " + "a" * 10 + "x zz", Evidence(DOC, quote))  # LCS exactly 10


def test_chunk_boundary_cutting_a_quote():
    quote = "precisely identifying the poor accurate project arrangements proper use of funds"
    first_part = "blah blah precisely identifying the poor accurate project arrangements"
    last_sliver = "of funds and then something else entirely"
    assert matches(DOC, first_part, Evidence(DOC, quote))
    assert not matches(DOC, last_sliver, Evidence(DOC, quote))


def test_empty_quote_never_matches():
    assert not matches(DOC, "anything", Evidence(DOC, " -- "))


@given(st.text(alphabet="ab c", min_size=1, max_size=30), st.text(alphabet="ab c", max_size=60))
def test_fast_rule_agrees_with_difflib(quote, text):
    q, t = normalise(quote), normalise(text)
    if not q:
        return
    expected = q in t or longest_common_substring(q, t) >= 0.5 * len(q)
    assert matches(DOC, text, Evidence(DOC, quote)) == expected
