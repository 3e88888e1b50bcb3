"""What a question asks for, read without a model: its type, focus, parts, terms and anchors.

    >>> q = analyse("We work in Ghana. How many cadres were sent to villages, and when?")
    >>> q.focus, q.wants
    ('How many cadres were sent to villages, and when?', {'number', 'date'})
    >>> [p.text for p in q.parts]
    ['How many cadres were sent to villages', 'when?']

The *focus* drops context the asker gives about themselves ("We work in Ghana."), so a country
named only as context is not taken as the subject. *Anchors* are the specific things the focus
names (capitalised names, numbers, years): a passage that answers must mention them, which is
the strongest abstention signal when none does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.language import detect_language
from kb.lexical import tokenize
from kb.verifier import _COMMON, canonical_number

# Stems of words that say how to ask, not what about: they never have to match a passage.
_QUESTION_STEMS = set(tokenize(
    "what which who whom whose when where why how many much tell describe explain list give "
    "name mean meaning actually exactly say says said according does did do is are was were "
    "can could would should also about kind sort example examples term phrase called refer "
    "cover covers covering compare comparison same different differ difference number "
    "concrete happen happened main key idea ones thing things way ways really"
), ) | {"whi", "doe"}
# Generic in this corpus: every passage is about China and poverty.
_GENERIC_STEMS = set(tokenize("China Chinese poverty poor country countries document documents"))
_NOT_ANCHORS = {
    "china", "chinese", "i", "i'm", "what", "how", "who", "when", "where", "which", "why",
    "do", "does", "did", "can", "could", "is", "are", "was", "were", "has", "have", "compare",
    "describe", "tell", "list", "give", "explain",
}
_FIRST_PERSON = re.compile(r"\b(I|I'm|I've|we|we're|our|us|my|me)\b", re.IGNORECASE)
_PART_SPLIT = re.compile(
    r"\?\s*|;\s*|,?\s+and\s+(?=(?:how|what|when|who|where|which|why|is|are|was|were|did|does|"
    r"do|can|has|have)\b)|,?\s+also\s+", re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"“'‘]([^\"“”'‘’]{3,80})[\"”'’]")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_NUM = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")

_WANTS = [
    ("number", re.compile(
        r"\bhow (many|much|big|large|long|high|far)\b|\bnumber of\b|\bwhat (percentage|share|"
        r"proportion|amount|sum)\b|\bhow much\b|\bcombien\b|\bcu[aá]nt[oa]s?\b|\bquant[oa]s?\b|"
        r"\bquel montant\b|\bكم\b", re.IGNORECASE)),
    ("date", re.compile(r"\bwhen\b|\bwhat (year|date|time)\b|\bwhich year\b|\bquand\b|"
                        r"\bcu[aá]ndo\b|\bquando\b|\bمتى\b", re.IGNORECASE)),
    ("name", re.compile(r"\bwho\b|\bwhich (organi[sz]ation|institution|university|agency|"
                        r"country|countries|province|village|company)\b|\bqui\b|\bqui[eé]n\b",
                        re.IGNORECASE)),
    ("place", re.compile(r"\bwhere\b|\bo[uù]\b|\bd[oó]nde\b|\bonde\b|\bأين\b", re.IGNORECASE)),
    ("definition", re.compile(
        r"\bwhat (is|are|was|were) (a |an |the )?[\"“'‘]|\bwhat does\b.*\bmean\b|\bmeaning of\b|"
        r"\bdefin|\brefer(s)? to\b|\bwhat exactly (is|are)\b|\bwhat (do|does) .* mean\b|"
        r"\bwhat (is|are) (a |an |the )?[\w\- ]{1,40}\?$|\bcover\b", re.IGNORECASE)),
    ("list", re.compile(r"\blist\b|\bwhat are (the|its) (\w+ )?(\w+ )?(stages|measures|"
                        r"components|parts|channels|parameters|steps|ways|elements)\b|"
                        r"\b(three|four|five|six|seven|eight) \w+", re.IGNORECASE)),
]


@dataclass(frozen=True)
class Part:
    text: str
    terms: tuple[str, ...]  # stemmed content terms
    anchors: tuple[str, ...]
    wants: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Question:
    text: str
    focus: str
    language: str
    wants: set[str] = field(default_factory=set)
    terms: tuple[str, ...] = ()  # stemmed content terms of the whole question
    focus_terms: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()  # lowercased names and canonical numbers in the focus
    quoted: tuple[str, ...] = ()  # quoted phrases (often the term being asked about)
    parts: tuple[Part, ...] = ()

    @property
    def english(self) -> bool:
        return self.language == "en"


def content_terms(text: str) -> list[str]:
    return [t for t in dict.fromkeys(tokenize(text))
            if t not in _QUESTION_STEMS and t not in _GENERIC_STEMS]


def anchors_of(text: str, english: bool = True) -> list[str]:
    """Names and numbers the text names. Outside English, only numbers: a French question's
    capitalised words ("Chine") need not occur in English passages."""
    out: list[str] = [canonical_number(n) for n in _NUM.findall(text)]
    if english:
        for sentence in re.split(r"(?<=[.?!:;])\s+", text):
            words = re.findall(r"[\w'’\-]+", sentence)
            for i, w in enumerate(words):
                base = re.sub(r"['’]s$", "", w).strip("'’-")
                if i == 0 or not base or not base[0].isupper() or base.isdigit():
                    continue
                for low in re.split(r"[-'’]", base.lower()):
                    if low and low not in _COMMON and low not in _NOT_ANCHORS:
                        out.append(low)
    return list(dict.fromkeys(out))


def focus_of(question: str) -> str:
    """The question without context sentences about the asker (first person, no '?')."""
    text = " ".join(question.split())
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", text) if s]
    if len(sentences) > 1:
        kept = [s for s in sentences if s.endswith("?") or not _FIRST_PERSON.search(s)]
        text = " ".join(kept) or text
    if ":" in text:
        head, tail = text.split(":", 1)
        if _FIRST_PERSON.search(head) and len(tail.split()) >= 3:
            text = tail.strip()
    return text


def analyse(question: str) -> Question:
    text = " ".join(question.split())
    language = detect_language(text)
    english = language == "en"
    focus = focus_of(text)
    wants = {name for name, pattern in _WANTS if pattern.search(focus)}
    parts = []
    for piece in _PART_SPLIT.split(focus):
        piece = piece.strip(" ,")
        if len(piece) < 3:
            continue
        if not parts and piece == focus.rstrip("?").strip():
            piece = focus
        parts.append(Part(piece, tuple(content_terms(piece)), tuple(anchors_of(piece, english)),
                          frozenset(n for n, pattern in _WANTS if pattern.search(piece))))
    # A trailing "?" belongs to the last part; keep texts readable in "does not say" notes.
    if parts and focus.endswith("?") and not parts[-1].text.endswith("?"):
        last = parts[-1]
        parts[-1] = Part(last.text + "?", last.terms, last.anchors, last.wants)
    quoted = tuple(q.strip() for q in _QUOTED.findall(text) if len(q.split()) <= 10)
    return Question(
        text=text, focus=focus, language=language, wants=wants,
        terms=tuple(content_terms(text)), focus_terms=tuple(content_terms(focus)),
        anchors=tuple(anchors_of(focus, english)), quoted=quoted, parts=tuple(parts),
    )


def years_in(text: str) -> set[str]:
    return set(_YEAR.findall(text))
