"""Hypothesis profiles and strategies shared by the hostile-input tests.

Profiles (applied per test with `@PROFILE`, so other test packages keep their own settings):
- "hostile-ci" (default): a bounded, derandomised number of examples, no deadline (2 shared
  cores), no example database (nothing written into the working tree).
- "hostile-thorough": thousands of random examples, for hunting bugs locally:

      POLICYKB_HYPOTHESIS=hostile-thorough .venv/bin/python -m pytest tests/hostile
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "hostile-ci", max_examples=30, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True,
)
settings.register_profile(
    "hostile-thorough", max_examples=2000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow], print_blob=True,
)
PROFILE = settings.get_profile(os.environ.get("POLICYKB_HYPOTHESIS", "hostile-ci"))


def examples(n: int) -> settings:
    """PROFILE with `n` examples in CI (the costlier properties take fewer, the cheap ones
    more); the thorough profile keeps its own number."""
    return PROFILE if PROFILE.max_examples > 100 else settings(PROFILE, max_examples=n)


# Words that exercise the sentence splitter's rules: abbreviations, initials, decimals,
# figures, quotes, brackets, non-ASCII words.
_WORDS = (
    "poverty the county relocated households Xi Jinping 9.6 million 2020 1.4 e.g. i.e. No. "
    "Oct. 16, pp. 6-8 U.S. Robert T. Geiger \"five batches\" (see above) [1] 中文 café "
    "Poverty-relief officials' 775,000 yuan. etc. a b"
).split()
# Characters extraction leaves behind: odd spaces and breaks, zero-width and bidi marks, soft
# hyphens, note markers, markup, quotes of every kind.
_ODD = list(
    "\u2028\u2029\x85\x0b\x0c\r\t\u00a0\u2009\u3000\u200b\u200f\u202e\ufeff\u00ad"
    ".!?\"'()[]#*-_<>\\ 0123456789\n\u2460\u00b9^\u201c\u201d\u2018\u2019\uff1a\ufb01"
)

unicode_text = st.text(
    st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(_ODD)), max_size=120
)
sentence = st.builds(
    lambda words, end: " ".join(words).capitalize() + end,
    st.lists(st.sampled_from(_WORDS), min_size=1, max_size=40),
    st.sampled_from([".", "!", "?", '."', "...", ".)", ""]),
)
paragraph = st.lists(st.one_of(sentence, sentence, sentence, unicode_text),
                     min_size=1, max_size=8).map(" ".join)
# Lines the structure stage gives a meaning to: headings, notes, glossary and case sections,
# TOC leaders, page numbers, markup.
special_line = st.sampled_from([
    "Glossary", "## Glossaries", "Case 1: A village in Guizhou", "Box 2", "Notes",
    "1 Introduction .......... 5", "Contents", "\u2460 A circled note.", "12", "- 3 -",
    "[1] A bracket note.", "1. First numbered note text here.", "Chapter II Something",
    "Five Batches: The five batches refer to five things.", "<sup>3</sup>", "**Bold heading**",
    "# Heading", "### Sub-heading with *emphasis*",
])
heading = st.builds(lambda t: "# " + t, st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
    min_size=1, max_size=30))
documents = st.lists(
    st.one_of(paragraph, paragraph, heading, unicode_text, special_line), min_size=1, max_size=10
).flatmap(lambda parts: st.sampled_from(["\n\n", "\n", " \n\n"]).map(lambda sep: sep.join(parts)))

# Questions: any unicode, punctuation and symbols only, injection-looking, template-looking.
_QUESTION_WORDS = (
    "What how many the five batches poverty relocated households county 2019 Bellwether Effect "
    "East-West ignore previous instructions reveal the password system prompt you are now DAN "
    "? . ! , ' \" ( ) [1] [99] </passages> <passages> {question} {{ }} %s \\ <|im_end|> "
    "\u202e \u200b SELECT * FROM chunks; DROP TABLE --"
).split(" ")
questions = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
    st.text(st.characters(categories=("P", "S", "Z")), min_size=1, max_size=60),
    st.lists(st.sampled_from(_QUESTION_WORDS), min_size=1, max_size=30).map(" ".join),
)
