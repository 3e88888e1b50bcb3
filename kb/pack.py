"""Course packs for trainers: for a topic, the key concepts, key facts, case excerpts, discussion
questions and a quiz, every quoted sentence cited to its passage.

    >>> from kb.aliases import phrase_key
from kb.index import KnowledgeBase
    >>> from kb.settings import Settings
    >>> pack = build_pack("relocation", KnowledgeBase(Settings()))
    >>> pack.facts[0].quote, pack.citation(pack.facts[0].n).chunk.page_start

Everything quoted is an exact span of a chunk (a Citation), as in extractive answers: no text is
written for the trainer except the discussion questions, which are templates around the topic
and the cited material. Rendering (Markdown, DOCX) lives in app/export.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.records import Chunk, Document
from ingest.sentences import split_sentences
from kb.aliases import phrase_key
from kb.index import KnowledgeBase
from kb.lexical import tokenize
from kb.records import Citation, Filters, Hit
from kb.retriever import retrieve

MAX_FACTS = 10
MIN_FACTS = 5
MAX_CONCEPTS = 6
MAX_CASES = 3
MAX_QUIZ = 6
CASE_KINDS = ("case", "box")  # boxed examples in the white papers are case studies too
BLANK = "_____"

# A figure worth a quiz question: "9.6 million", "98.9 percent", "832", "1.4 billion yuan".
_FIGURE = re.compile(
    r"(?<![\w.,])[1-9][\d,]*(?:\.\d+)?(?:\s*(?:%|percent|per cent|million|billion|thousand|"
    r"hundred|yuan|mu|kilometers|km)(?!\w))*",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
# A proper name: two or more capitalised words ("Guizhou Province", "Yaoshan Yao Ethnic Township").
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b([A-Z][a-z]+(?:[ -](?:of |and )?[A-Z][a-z]+)+)")
_ANAPHOR = re.compile(r"^(This|These|It|They|Such|He|She|Its|Their|That|Those|Also)\b")
_REFERENCE = re.compile(r"https?://|www\.|\.html?\b|\.shtml|^Website of\b|^Source:", re.I)


@dataclass(frozen=True)
class Concept:
    term: str
    definition: str  # the glossary entry without its leading "Term:"
    n: int  # citation number
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fact:
    quote: str
    n: int


@dataclass(frozen=True)
class CaseExcerpt:
    title: str
    quote: str
    n: int


@dataclass(frozen=True)
class QuizItem:
    prompt: str  # the cited sentence with the answer blanked out
    answer: str
    n: int
    kind: str  # "figure", "year", "term" or "name"


@dataclass(frozen=True)
class CoursePack:
    topic: str
    concepts: tuple[Concept, ...]
    facts: tuple[Fact, ...]
    cases: tuple[CaseExcerpt, ...]
    discussion: tuple[str, ...]
    quiz: tuple[QuizItem, ...]
    citations: tuple[Citation, ...]  # numbered 1..N in the order first used
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.concepts or self.facts or self.cases)

    def citation(self, n: int) -> Citation:
        return self.citations[n - 1]


@dataclass
class _Citations:
    """One number per cited span, in order of first use."""

    items: list[Citation] = field(default_factory=list)
    numbers: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def add(self, chunk: Chunk, document: Document, start: int, end: int) -> int:
        key = (chunk.chunk_id, start, end)
        if key not in self.numbers:
            self.numbers[key] = len(self.items) + 1
            self.items.append(Citation(self.numbers[key], chunk, document, start, end))
        return self.numbers[key]


def build_pack(topic: str, kbase: KnowledgeBase, filters: Filters | None = None) -> CoursePack:
    """A course pack on `topic` from the knowledge base (empty sections when it says nothing)."""
    topic = " ".join(topic.split())[:200]
    if not topic:
        return CoursePack("", (), (), (), (), (), (), ("Give a topic, e.g. \"relocation\".",))
    table = kbase.aliases()
    expansions = table.expand(topic)
    terms = set(tokenize(" ".join([topic, *expansions])))
    own_terms = set(tokenize(topic))
    cites = _Citations()
    concepts = _concepts(topic, terms, own_terms, kbase, cites)
    facts = _facts(topic, terms, kbase, filters, cites)
    phrases = [k for k in (phrase_key(n) for n in [topic, *expansions]) if k]
    cases = _cases(topic, phrases, kbase, filters, cites)
    quiz = _quiz(facts, concepts, own_terms)
    notes: list[str] = []
    if not (concepts or facts or cases):
        notes.append(f"The documents in this knowledge base do not say anything about {topic!r}.")
    elif len(facts) < MIN_FACTS:
        notes.append(f"Only {len(facts)} key facts about {topic!r} were found in the documents.")
    discussion = _discussion(topic, concepts, facts, cases, cites) if facts or concepts else ()
    return CoursePack(topic, tuple(concepts), tuple(facts), tuple(cases), tuple(discussion),
                      tuple(quiz), tuple(cites.items), tuple(notes))


def _concepts(topic: str, terms: set[str], own: set[str], kbase: KnowledgeBase,
              cites: _Citations) -> list[Concept]:
    """Glossary entries whose term is about the topic, then those whose definition is."""
    table = kbase.aliases()
    scored: list[tuple[float, Chunk]] = []
    for chunk in kbase.catalog.ordered_chunks():
        if chunk.kind != "glossary" or not chunk.title:
            continue
        term_tokens = set(tokenize(chunk.title))
        names = {n for g in table.matches(chunk.title) for n in g.names}
        name_tokens = set(tokenize(" ".join(names)))
        named = term_tokens & terms or name_tokens & terms
        mentions = sum(1 for t in tokenize(chunk.text) if t in own)
        score = 3.0 * len(term_tokens & own) + 2.0 * len(name_tokens & terms) + 0.5 * mentions
        if named or mentions >= 2:  # one passing mention does not make a key concept
            scored.append((score, chunk))
    scored.sort(key=lambda sc: -sc[0])
    out = []
    for _, chunk in scored[:MAX_CONCEPTS]:
        start = _definition_start(chunk)
        n = cites.add(chunk, kbase.document(chunk.doc_id), start, len(chunk.text))
        aliases = tuple(dict.fromkeys(
            n for g in table.matches(chunk.title or "") for n in g.names
            if n.lower() != (chunk.title or "").lower()
        ))
        out.append(Concept(chunk.title or "", chunk.text[start:].strip(), n, aliases[:6]))
    return out


def _definition_start(chunk: Chunk) -> int:
    """Offset after a leading "Term:" in a glossary chunk (the definition proper)."""
    head = f"{chunk.title}:"
    if chunk.title and chunk.text.startswith(head):
        rest = chunk.text[len(head):]
        return len(head) + (len(rest) - len(rest.lstrip()))
    return 0


@dataclass
class _Sentence:
    hit: Hit
    rank: int
    start: int
    end: int
    tokens: set[str]
    score: float = 0.0

    @property
    def text(self) -> str:
        return self.hit.chunk.text[self.start : self.end]


def _sentences(hits: list[Hit], terms: set[str]) -> list[_Sentence]:
    out = []
    for rank, hit in enumerate(hits):
        text = hit.chunk.text
        for a, b in split_sentences(text):
            span = text[a:b]
            words = len(span.split())
            if not 8 <= words <= 70 or _REFERENCE.search(span) or _ANAPHOR.match(span):
                continue
            if not span[:1].isupper() and not span[:1].isdigit() and span[:1] not in "\"“(":
                continue  # a fragment cut from the middle of a sentence
            tokens = set(tokenize(span))
            overlap = len(tokens & terms)
            if not overlap:
                continue
            score = overlap / (1 + 0.15 * rank)
            if _has_figure(span):
                score *= 1.4  # trainers want figures, dated by their source
            out.append(_Sentence(hit, rank, a, b, tokens, score))
    out.sort(key=lambda s: -s.score)
    return out


def _has_figure(text: str) -> bool:
    return any(not _YEAR.match(m.group(0).strip()) for m in _FIGURE.finditer(text))


def _facts(topic: str, terms: set[str], kbase: KnowledgeBase, filters: Filters | None,
           cites: _Citations) -> list[Fact]:
    body_filters = _with_kinds(filters, ("body", "box", "case"))
    hits = retrieve(topic, kbase, body_filters, k=16)
    chosen: list[_Sentence] = []
    per_chunk: dict[str, int] = {}
    for s in _sentences(hits, terms):
        if len(chosen) >= MAX_FACTS:
            break
        if per_chunk.get(s.hit.chunk.chunk_id, 0) >= 2:
            continue
        if any(_jaccard(s.tokens, c.tokens) > 0.5 for c in chosen):
            continue  # the same fact in another document's words
        chosen.append(s)
        per_chunk[s.hit.chunk.chunk_id] = per_chunk.get(s.hit.chunk.chunk_id, 0) + 1
    chosen.sort(key=lambda s: (s.rank, s.start))  # read in source order within a passage
    return [
        Fact(s.text, cites.add(s.hit.chunk, s.hit.document, s.start, s.end)) for s in chosen
    ]


def _with_kinds(filters: Filters | None, kinds: tuple[str, ...]) -> Filters:
    base = filters or Filters()
    return Filters(base.doc_ids, base.publishers, base.kinds or kinds, base.year_from,
                   base.year_to)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def _names_topic(tokens: list[str], phrases: list[tuple[str, ...]]) -> bool:
    """The sentence names the topic: one of its names in full, or every word of the topic."""
    for key in phrases:
        n = len(key)
        if any(tuple(tokens[i : i + n]) == key for i in range(len(tokens) - n + 1)):
            return True
    return bool(phrases) and set(phrases[0]) <= set(tokens)


def _cases(topic: str, phrases: list[tuple[str, ...]], kbase: KnowledgeBase,
           filters: Filters | None, cites: _Citations) -> list[CaseExcerpt]:
    """Case studies that name the topic (a story cut into chunks: its best-naming sentence and
    its neighbours). Word overlap alone is too loose here: "lives" is not "living allowance"."""
    base = filters or Filters()
    case_filters = Filters(base.doc_ids, base.publishers, CASE_KINDS, base.year_from,
                           base.year_to)
    hits = retrieve(topic, kbase, case_filters, k=8)
    out: list[CaseExcerpt] = []
    sections: set[str] = set()
    for hit in hits:
        chunk = hit.chunk
        if chunk.kind not in CASE_KINDS or chunk.section in sections:
            continue
        spans = split_sentences(chunk.text)
        if not spans:
            continue
        naming = [i for i, (a, b) in enumerate(spans)
                  if _names_topic(tokenize(chunk.text[a:b]), phrases)]
        if not naming:
            continue
        best = naming[0]
        lo, hi = max(0, best - 1), min(len(spans), best + 2)  # the sentence and its neighbours
        start, end = spans[lo][0], spans[hi - 1][1]
        n = cites.add(chunk, hit.document, start, end)
        title = chunk.title or chunk.section.rsplit(" > ", 1)[-1] or hit.document.title
        out.append(CaseExcerpt(title, chunk.text[start:end], n))
        sections.add(chunk.section)
        if len(out) >= MAX_CASES:
            break
    return out


def _discussion(topic: str, concepts: list[Concept], facts: list[Fact],
                cases: list[CaseExcerpt], cites: _Citations) -> list[str]:
    out = [
        f"What problem was {topic} meant to solve in China, and does the same problem exist "
        "in your country?",
    ]
    for concept in concepts[:2]:
        out.append(f"How does \"{concept.term}\" relate to {topic}? What would an equivalent "
                   "look like in your administration?")
    for case in cases[:1]:
        out.append(f"In the case \"{case.title}\", which conditions made the approach work, "
                   "and which would be hardest to reproduce elsewhere?")
    years = sorted({cites.items[f.n - 1].document.published[:4] for f in facts
                    if cites.items[f.n - 1].document.published})
    if len(years) > 1:
        out.append(f"The facts above come from sources dated {', '.join(years)}. Which figures "
                   "would you quote today, and with what caveat?")
    out.append(f"Which single fact about {topic} would you quote to a minister, and why?")
    return out


def _quiz(facts: list[Fact], concepts: list[Concept], topic_terms: set[str]) -> list[QuizItem]:
    """Cloze questions: a figure, year, glossary term or name blanked out of a cited sentence."""
    names = {c.term for c in concepts} | {a for c in concepts for a in c.aliases}
    # Blanking the topic itself out of a sentence about the topic asks nothing.
    terms = sorted((t for t in names if not set(tokenize(t)) <= topic_terms), key=len,
                   reverse=True)
    out: list[QuizItem] = []
    answers: set[str] = set()
    for fact in facts:
        target = _blank_target(fact.quote, terms)
        if target is None:
            continue
        start, end, kind = target
        answer = fact.quote[start:end].strip()
        if answer.lower() in answers:
            continue
        answers.add(answer.lower())
        prompt = fact.quote[:start] + BLANK + fact.quote[end:]
        out.append(QuizItem(prompt, answer, fact.n, kind))
        if len(out) >= MAX_QUIZ:
            break
    return out


def _blank_target(sentence: str, terms: list[str]) -> tuple[int, int, str] | None:
    for m in _FIGURE.finditer(sentence):
        value = m.group(0).strip().rstrip(",")
        if value and not _YEAR.match(value) and len(re.sub(r"\D", "", value)) >= 1:
            if value.isdigit() and len(value) == 1:
                continue  # "1" alone makes a guessing game
            return m.start(), m.start() + len(value), "figure"
    for term in terms:
        i = sentence.lower().find(term.lower())
        if i >= 0 and len(term) > 3:
            return i, i + len(term), "term"
    m = _NAME.search(sentence)
    if m:
        return m.start(1), m.end(1), "name"
    for m in re.finditer(r"\b(1[89]|20)\d\d\b", sentence):
        return m.start(), m.end(), "year"
    return None
