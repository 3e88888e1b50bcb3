"""Fast tests of the answer engine's parts: verifier, citations, question analysis, follow-ups,
conflicting figures. No models, no index."""

from __future__ import annotations

from kb.conflicts import _same_thing, figures_in
from kb.followup import condense, is_followup
from kb.question import analyse
from kb.verifier import keep_valid_citations, strip_invalid_markers, verify

PASSAGE = (
    "From 2015 to the end of 2020, 127,000 private enterprises participated in this action and "
    "offered targeted help to 139,100 poor villages, the State Council Leading Group said."
)


def test_verifier_accepts_a_verbatim_sentence() -> None:
    sentence = "From 2015 to the end of 2020, 127,000 private enterprises participated"
    verdict = verify(sentence, [PASSAGE])
    assert verdict.supported, verdict.reasons


def test_verifier_rejects_an_invented_number() -> None:
    verdict = verify("From 2015 to 2020, 150,000 private enterprises participated.", [PASSAGE])
    assert not verdict.supported
    assert verdict.missing_numbers == ["150000"]


def test_verifier_rejects_a_name_not_in_the_passage() -> None:
    verdict = verify("In Kenya, 127,000 private enterprises participated in this action.",
                     [PASSAGE])
    assert not verdict.supported
    assert "kenya" in verdict.missing_names


def test_verifier_rejects_unrelated_content_and_missing_passages() -> None:
    assert not verify("Mushroom farming spread quickly across the highlands.", [PASSAGE]).supported
    assert not verify("127,000 private enterprises participated.", []).supported


def test_verifier_ignores_citation_markers_and_number_formats() -> None:
    assert verify("Some 127,000 private enterprises helped 139,100 poor villages [1].",
                  [PASSAGE]).supported
    assert verify("Poverty fell to 42% of households.", ["Poverty fell to 42 percent of "
                                                         "households."]).supported


def test_invalid_citation_ids_are_removed() -> None:
    assert keep_valid_citations([2, 9, 2, 1], {1, 2, 3}) == [2, 1]
    text, kept = strip_invalid_markers("Poverty fell [1][4]. It rose [3] [2].", {1, 2})
    assert text == "Poverty fell [1]. It rose [2]."
    assert kept == [1, 2]


def test_question_analysis_types_parts_and_focus() -> None:
    q = analyse("We run maize programmes in Ghana. How many cadres were sent, and when?")
    assert "ghana" not in q.anchors  # context about the asker is not the subject
    assert {"number", "date"} <= q.wants
    assert len(q.parts) == 2
    q = analyse("What is China's Gini coefficient in 2024?")
    assert set(q.anchors) == {"gini", "2024"}
    assert not analyse("¿Cuántas personas fueron reubicadas en 2020?").english


def test_three_turn_followup_carries_the_topic() -> None:
    history: list[str] = []
    first = condense("How many people were relocated from inhospitable areas?", history)
    assert first == "How many people were relocated from inhospitable areas?"
    history.append(first)
    second = condense("And how many resettlement communities were built?", history)
    assert "relocated" in second and "inhospitable" in second
    history.append(second)
    third = condense("What about schools?", history)
    assert third.startswith("What about schools?")
    assert "relocated" in third  # the first turn's topic survives two follow-ups
    # A self-contained question is left alone.
    assert not is_followup("What is the Fish Scale Book in the glossary?")
    assert condense("What is the Fish Scale Book in the glossary?", history).endswith("glossary?")


def test_conflicting_figures_are_the_same_thing_only_when_they_match() -> None:
    a = figures_in("In recent years nearly 110,000 private enterprises have delivered support.")
    b = figures_in("From 2015 to 2020, 127,000 private enterprises participated in this action.")
    assert _same_thing(a[0], b[0])
    c = figures_in("The campaign trained 120,000 village doctors in remote areas.")
    assert not _same_thing(a[0], c[0])
    assert [f.value for f in figures_in("In 2011 it was 122 million.")] == [122.0]


def test_each_sentence_of_a_unit_must_be_supported() -> None:
    passage = "By 2020, 9.6 million people had been relocated to new homes in 35,000 settlements."
    first = "By 2020, 9.6 million people had been relocated to new homes."
    assert verify(first, [passage]).supported
    joined = ("By 2020, 9.6 million people had been relocated to new homes. "
              "They all found jobs in the settlements.")
    verdict = verify(joined, [passage])
    assert not verdict.supported
    assert verdict.coverage < 0.6


def test_a_figure_reference_is_not_a_missing_number() -> None:
    passage = "Rural per capita income grew fastest in the poor counties."
    assert verify("Rural per capita income grew fastest in the poor counties (Figure 2).",
                  [passage]).supported
    assert not verify("Rural per capita income grew 2 times in the poor counties.",
                      [passage]).supported
