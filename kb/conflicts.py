"""Conflicting figures: two documents giving different numbers for the same thing.

A figure is a number with its scale ("122 million", "127,000") and the words around it. Two
figures from different documents conflict when they have the same scale, different values of
the same order of magnitude, and share a noun right next to the number ("... 127,000 private
enterprises" / "nearly 110,000 private enterprises") or at least two content words nearby
("poor population was 122 million" / "rural poor people decreased from 166 million").
The answer then shows both sentences, each cited, and a note dating each figure.

    >>> a = figures_in("In 2011 the poor population was 122 million.")
    >>> [(f.value, f.scale) for f in a]
    [(122.0, 'million')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.extractive import Candidate
from kb.lexical import tokenize
from kb.verifier import canonical_number, numbers_in

_FIGURE = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(million|billion|thousand|"
    r"percent|%))?(?![\w])"
)
_YEAR = re.compile(r"^(1[89]\d\d|20\d\d)$")
_WINDOW = 6  # words either side that describe the figure
# Words that name the same counted thing in these documents.
_SAME = {t: "peopl" for t in ("popul", "poor", "person", "resid", "individu", "peopl")}
_SAME |= {"compani": "enterpris", "firm": "enterpris"}


@dataclass(frozen=True)
class Figure:
    value: float
    scale: str  # "million", "billion", "percent", "" (a plain count)
    phrase: str  # the number as written, with its scale ("122 million")
    after: tuple[str, ...]  # stems right after the figure
    near: frozenset[str]  # content stems within the window, plus the sentence's other numbers


@dataclass(frozen=True)
class Conflict:
    a: Candidate
    b: Candidate
    fig_a: Figure
    fig_b: Figure


def figures_in(text: str) -> list[Figure]:
    out = []
    for m in _FIGURE.finditer(text):
        raw, scale = m.group(1), (m.group(2) or "").lower()
        if scale == "%":
            scale = "percent"
        if not scale and (_YEAR.match(raw) or ("," not in raw and float(raw) < 100)):
            continue  # years, and small bare numbers ("three", "No. 1"), are not figures
        before = tokenize(text[max(0, m.start() - 60) : m.start()])[-_WINDOW:]
        after = tokenize(text[m.end() : m.end() + 60])[:_WINDOW]
        after = [t for t in after if not t.isdigit()]
        near = {_SAME.get(t, t) for t in before + after if not t.isdigit()}
        near |= {f"#{n}" for n in numbers_in(text) if n != canonical_number(raw)
                 and not _YEAR.match(n)}
        out.append(Figure(float(raw.replace(",", "")), scale, m.group(0).strip(),
                          tuple(_SAME.get(t, t) for t in after[:2]), frozenset(near)))
    return out


def _same_thing(x: Figure, y: Figure) -> bool:
    if x.scale != y.scale or x.value == y.value:
        return False
    ratio = min(x.value, y.value) / max(x.value, y.value)
    if ratio < 0.5:
        return False  # different orders of magnitude: another quantity, not a disagreement
    if x.after and y.after and x.after == y.after:
        return True  # "127,000 private enterprises" / "nearly 110,000 private enterprises"
    return len(x.near & y.near) >= 2 and any(t.startswith("#") for t in x.near & y.near)


def find_conflicts(chosen: list[Candidate], pool: list[Candidate]) -> list[Conflict]:
    """Conflicts between a chosen sentence and a sentence of another document (chosen or in
    the pool of relevant candidates)."""
    found: list[Conflict] = []
    paired: set[frozenset[tuple[str, int]]] = set()  # one note per pair of sentences
    for a in chosen:
        for b in [*chosen, *pool]:
            pair = frozenset((a.key, b.key))
            if b.hit.chunk.doc_id == a.hit.chunk.doc_id or pair in paired:
                continue
            match = next(
                ((fa, fb) for fa in figures_in(a.text) for fb in figures_in(b.text)
                 if _same_thing(fa, fb)),
                None,
            )
            if match:
                paired.add(pair)
                found.append(Conflict(a, b, *match))
    return found
