"""Checks an answer sentence against the passages it cites, before it is shown.

The same function judges extractive sentences (which pass by construction: it catches span
bugs), generative sentences (which are dropped when they fail) and, in `kb eval --answers`,
every (sentence, citation) pair for citation precision and recall (ALCE-style).

    >>> verify("About 98.99 million people were lifted out of poverty.",
    ...        ["In total 98.99 million rural poor people were lifted out of poverty."]).supported
    True
    >>> verify("About 97 million people were lifted out of poverty.",
    ...        ["In total 98.99 million rural poor people were lifted out of poverty."]).reasons
    ['number not in cited passages: 97']

Rules: every number (amounts, percentages, years) and every capitalised name in the sentence
must occur in a cited passage, and most of its content words must too. No entailment model: the
venv has no packaged NLI model that runs offline, and for verbatim extractive sentences the
lexical rules are exact.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from ingest.sentences import split_sentences
from kb.lexical import _STOP, tokenize

DEFAULT_MIN_COVERAGE = 0.6

_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![\d])")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’\-]*[A-Za-z]\b|\b[A-Z]{2,}\b")
_MARKER = re.compile(r"\s*\[(\d+)\]")
# "(Figure 1)", "(see Box 16)": a pointer into the document, not a claim with a number.
_FIGURE_REF = re.compile(r"\(\s*(?:see\s+)?(?:figure|fig\.|box|table|chart|annex)\s*[\w.]+\s*\)",
                         re.IGNORECASE)
# Capitalised words that are not names: sentence openers and connectives.
_COMMON = _STOP | {
    "however", "meanwhile", "moreover", "furthermore", "therefore", "thus", "also", "since",
    "although", "while", "during", "among", "according", "besides", "overall", "finally",
    "first", "second", "third", "today", "yet", "still", "instead", "hence", "accordingly",
    "some", "many", "most", "all", "each", "every", "both", "several", "few", "other",
    "another", "more", "less", "one", "two", "three", "four", "five", "six", "seven", "eight",
    "nine", "ten", "under", "over", "after", "before", "through", "without", "within", "across",
    "because", "though", "unless", "until", "whether", "why", "how", "what", "which", "who",
    "whom", "whose", "where", "when", "here", "there", "now", "then", "once", "only", "even",
    "just", "again", "last", "next", "new", "as", "like", "unlike", "despite", "based", "given",
    "following", "including", "regarding", "compared", "similarly", "likewise", "indeed",
    "in", "on", "at", "by", "for", "from", "to", "with", "of", "and", "or", "but", "nor", "so",
}


@dataclass(frozen=True)
class Verdict:
    supported: bool
    reasons: list[str] = field(default_factory=list)
    coverage: float = 1.0  # share of the sentence's content words found in the passages
    missing_numbers: list[str] = field(default_factory=list)
    missing_names: list[str] = field(default_factory=list)


def numbers_in(text: str) -> set[str]:
    """Numbers as canonical strings: "775,000" -> "775000", "42.0" -> "42", "1.5" -> "1.5"."""
    out = set()
    for raw in _NUMBER.findall(text):
        out.add(canonical_number(raw))
    return out


def canonical_number(raw: str) -> str:
    digits = re.sub(r"[,\s]", "", raw)
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return digits.lstrip("0") or "0"


def names_in(text: str) -> set[str]:
    """Capitalised words that may be names (lowercased), minus common sentence openers."""
    return {w.lower() for w in _CAPITALISED.findall(text) if w.lower() not in _COMMON}


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[\w'’\-]+", text)} | {
        part.lower() for w in re.findall(r"[\w'’\-]+", text) for part in re.split(r"[-'’]", w)
    }


def verify(
    sentence_text: str,
    cited_passages: Sequence[str],
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Verdict:
    """Is `sentence_text` supported by `cited_passages` (the texts of the passages it cites)?

    A unit of several sentences is supported only if each of them is: a well-covered first
    sentence must not carry an unsupported second one through.
    """
    sentence = _FIGURE_REF.sub("", _MARKER.sub("", sentence_text))
    if not cited_passages:
        return Verdict(False, ["no cited passage"], 0.0)
    spans = split_sentences(sentence)
    if len(spans) > 1:
        verdicts = [verify(sentence[a:b], cited_passages, min_coverage) for a, b in spans]
        return Verdict(
            all(v.supported for v in verdicts),
            [r for v in verdicts for r in v.reasons],
            min(v.coverage for v in verdicts),
            sorted({n for v in verdicts for n in v.missing_numbers}),
            sorted({n for v in verdicts for n in v.missing_names}),
        )
    joined = "\n".join(cited_passages)
    reasons: list[str] = []
    missing_numbers = sorted(numbers_in(sentence) - numbers_in(joined))
    if missing_numbers:
        reasons.append("number not in cited passages: " + ", ".join(missing_numbers))
    words = _words(joined)
    missing_names = sorted(n for n in names_in(sentence) if n not in words)
    if missing_names:
        reasons.append("name not in cited passages: " + ", ".join(missing_names))
    content = set(tokenize(sentence))
    coverage = len(content & set(tokenize(joined))) / len(content) if content else 1.0
    if coverage < min_coverage:
        reasons.append(f"content words covered {coverage:.2f} < {min_coverage:.2f}")
    return Verdict(not reasons, reasons, coverage, missing_numbers, missing_names)


def keep_valid_citations(cited: Sequence[int], valid: Collection[int]) -> list[int]:
    """The citation ids among `valid`, first-seen order, duplicates dropped (paper-qa)."""
    return [n for n in dict.fromkeys(cited) if n in valid]


def strip_invalid_markers(text: str, valid: Collection[int]) -> tuple[str, list[int]]:
    """Remove "[n]" markers whose n is not a passage that was given; return (text, kept ids).

    >>> strip_invalid_markers("Poverty fell [1] [7].", {1, 2})
    ('Poverty fell [1].', [1])
    """
    kept: list[int] = []

    def repl(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n in valid:
            if n not in kept:
                kept.append(n)
            return m.group(0)
        return ""

    return _MARKER.sub(repl, text), kept
