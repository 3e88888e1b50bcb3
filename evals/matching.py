"""The rule deciding whether a retrieved passage contains a gold evidence quote.

A passage matches an evidence item when it comes from the same source file and, after
``normalise``, either the quote is a substring of the passage, or the longest common substring
of the two covers at least half of the quote. The 50% branch credits a chunk boundary that cuts a
quote in two: the chunk holding the larger half counts, a chunk holding a sliver does not.
"""

from __future__ import annotations

import math
import re
from difflib import SequenceMatcher
from functools import lru_cache

from evals.gold import Evidence

MIN_COVERAGE = 0.5

# [\W_] is "not a Unicode letter or digit", so this works for any script, not only ASCII.
_NON_ALNUM = re.compile(r"[\W_]+")


@lru_cache(maxsize=8192)  # passages recur across evidence items and questions
def normalise(text: str) -> str:
    """Lowercase, collapse runs of non-alphanumerics to one space, strip.

    >>> normalise('The "Six Precise  Measures",\\nput forward')
    'the six precise measures put forward'
    """
    return _NON_ALNUM.sub(" ", text.lower()).strip()


def longest_common_substring(a: str, b: str) -> int:
    """Length of the longest common substring (reference implementation, difflib)."""
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size


def _shares_substring(quote: str, text: str, length: int) -> bool:
    """True when some ``length``-character substring of ``quote`` occurs in ``text``.

    Equivalent to ``longest_common_substring(quote, text) >= length`` but runs in C via ``in``:
    SequenceMatcher is quadratic in pure Python, and the eval runs this for every
    (passage, evidence) pair with the same source.
    """
    if length <= 0:
        return True
    return any(quote[i : i + length] in text for i in range(len(quote) - length + 1))


def matches(passage_source: str, passage_text: str, evidence: Evidence) -> bool:
    """Does this retrieved passage contain (enough of) the evidence quote?

    ``passage_source`` must be the seed's file name as in corpus/ (what gold ``doc`` holds).
    """
    if passage_source != evidence.doc:
        return False
    quote = normalise(evidence.quote)
    if not quote:  # load_gold rejects these; an empty quote would otherwise match everything
        return False
    text = normalise(passage_text)
    if quote in text:
        return True
    return _shares_substring(quote, text, math.ceil(MIN_COVERAGE * len(quote)))
