"""Sentence boundaries as character spans.

Why a regex splitter and not a library: the venv has nltk (punkt data ships inside
llama-index-core), but punkt is trained on news text and splits this corpus's
"Oct. 16, 2015", "No. 1 Central Document", "Sept. 28" and "pp. 6-8" inconsistently, and it
returns strings, not offsets. The rules below are few, deterministic, return spans into the
original string (the offsets invariant depends on that) and are tested on the seeds.
"""

from __future__ import annotations

import re

# Words after which a period does not end a sentence.
_ABBREVIATIONS = {
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "no", "nos", "vol", "vols", "pp", "p", "art", "fig", "figs", "ed", "eds", "trans",
    "mr", "mrs", "ms", "dr", "prof", "st", "mt", "gen", "gov", "sen", "rep", "jr", "sr",
    "e.g", "i.e", "etc", "cf", "vs", "approx", "est", "dept", "inc", "ltd", "co", "corp",
    "u.s", "u.k", "u.n", "p.r", "a.m", "p.m", "al",
}

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"[.!?\u061f]+[\"')\]]*(?=\s+)|\n\s*\n")  # \u061f: Arabic "?"
_NEXT_START = re.compile(r"\s+([\"'(\[]*)(\S)")


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    if match.group(0).startswith("\n"):
        return True
    punct_pos = match.start()
    nxt = _NEXT_START.match(text, match.end())
    if nxt is None:
        return True
    following = nxt.group(2)
    # Sentences start with a capital, a digit, an opening quote/bracket, or a letter of a
    # script without case (Chinese, Arabic); "e.g. the" does not.
    caseless = following.isalpha() and following.lower() == following.upper()
    if not (following.isupper() or following.isdigit() or nxt.group(1) or caseless):
        return False
    if text[punct_pos] != ".":
        return True
    word = re.search(r"([A-Za-z.]+)$", text[max(0, punct_pos - 12) : punct_pos])
    token = word.group(1).lower().strip(".") if word else ""
    if token in _ABBREVIATIONS:
        # "Oct. 16", "No. 1", "pp. 6": an abbreviation followed by a number never ends here.
        return not following.isdigit() and token not in {"no", "nos", "pp", "p", "vol", "art"}
    # Single initials ("Robert T. Geiger") and dotted acronyms ("U.S.") are not ends.
    if word and len(token) == 1 and token.isalpha() and text[punct_pos - 1].isupper():
        return False
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans (start, end) of sentences in text[start:end], whitespace trimmed from each span.

    >>> t = "On Oct. 16, 2015, Xi spoke. It cost 1.4 billion yuan! Done."
    >>> [t[a:b] for a, b in split_sentences(t)]
    ['On Oct. 16, 2015, Xi spoke.', 'It cost 1.4 billion yuan!', 'Done.']
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        if not _is_boundary(text, match):
            continue
        cut = match.start() if match.group(0).startswith("\n") else match.end()
        _append_trimmed(text, cursor, cut, spans)
        cursor = cut
    _append_trimmed(text, cursor, end, spans)
    return spans


def _append_trimmed(text: str, a: int, b: int, spans: list[tuple[int, int]]) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if a < b:
        spans.append((a, b))
