"""Extractive answers: the best supporting sentences of the retrieved passages, in their own words.

    >>> q = analyse("What are the five batches?")
    >>> picked = select_sentences(q, score_sentences(q, hits, kbase), kbase.settings.answer)

Each candidate sentence is a span of a chunk's text (ingest.sentences.split_sentences), so the
quote a citation shows is an exact substring of the passage and its offsets are exact.

Scoring, per sentence:
- dense: similarity of the question to the ingest-time window vectors (three sentences, stored
  in Chroma) that contain the sentence: no embedding at question time besides the query, which
  keeps an answer far under the 500 ms budget on two cores. MiniLM for English questions, e5
  for the others (its multilingual space is what finds English sentences for a French question).
- lexical: IDF-weighted share of the question's content terms (stemmed) the sentence contains,
  the asker's focus (the question without "we work in Ghana" context) weighing most.
- cues: what the question wants (a number for "how many", a year for "when", a name for "who",
  a definition for "what is X"), quoted phrases, the passage's retrieval rank.
Selection is greedy MMR with a coverage term, so each part of a multi-part question gets its
best sentence and near-duplicates from two documents do not both appear.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ingest.sentences import split_sentences
from kb.index import KnowledgeBase, vector_units
from kb.lexical import tokenize
from kb.question import Question
from kb.records import Hit
from kb.settings import AnswerSettings

_DIGIT = re.compile(r"\d")
_YEARISH = re.compile(
    r"\b(1[89]\d\d|20\d\d)\b|\b(January|February|March|April|May|June|July|August|September|"
    r"October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\b\.?"
)
_NUMBERISH = re.compile(r"\d|\b(million|billion|thousand|hundred|percent|dozens?)\b", re.I)
_NAMEISH = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+")
_DEFINES = re.compile(r"\b(refers? to|is defined as|means|stands for|is known as|is called|"
                      r"is a term|describes|are the)\b", re.I)
_ANAPHOR = re.compile(r"^(This|These|It|They|Such|He|She|Its|Their|That|Those)\b")
_WORD = re.compile(r"[\w'’\-]+")
# Bibliographic references (URLs, "Website of ..."): sources of a claim, not claims.
_REFERENCE = re.compile(r"https?://|www\.|\.html?\b|\.shtml|^Website of\b", re.I)


@dataclass
class Candidate:
    rank: int  # retrieval rank of its passage (0 = best)
    hit: Hit
    start: int  # offsets into hit.chunk.text
    end: int
    position: int  # sentence index within the chunk
    tokens: frozenset[str]
    dense: float = 0.0
    lexical: float = 0.0
    relevance: float = 0.0
    lead: bool = False  # a glossary definition of the asked term: goes first
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.hit.chunk.text[self.start : self.end]

    @property
    def words(self) -> int:
        return len(self.text.split())

    @property
    def key(self) -> tuple[str, int]:
        return (self.hit.chunk.chunk_id, self.start)


class CorpusStats:
    """Document frequencies over the chunks (text + title + publisher + date), per catalog state:
    IDF weights for lexical coverage and "does the corpus mention this name at all"."""

    def __init__(self, kbase: KnowledgeBase):
        self.stamp = kbase.catalog.state_hash()
        stems: Counter[str] = Counter()
        words: Counter[str] = Counter()
        chunks = list(kbase.catalog.chunks.values())
        for c in chunks:
            stems.update(set(tokenize(c.text)))
            words.update(chunk_words(kbase, c.chunk_id))
        self.n = max(1, len(chunks))
        self._stems = stems
        self._words = words

    def idf(self, stem: str) -> float:
        return math.log(1 + (self.n + 1) / (self._stems.get(stem, 0) + 0.5))

    def word_df(self, word: str) -> int:
        return self._words.get(word, 0)

    def stem_df(self, stem: str) -> int:
        return self._stems.get(stem, 0)


_STATS: dict[int, CorpusStats] = {}
_WORDS: dict[tuple[int, str], frozenset[str]] = {}
_LOCK = threading.Lock()


def corpus_stats(kbase: KnowledgeBase) -> CorpusStats:
    with _LOCK:
        stats = _STATS.get(id(kbase))
        if stats is None or stats.stamp != kbase.catalog.state_hash():
            stats = _STATS[id(kbase)] = CorpusStats(kbase)
        return stats


def chunk_words(kbase: KnowledgeBase, chunk_id: str) -> frozenset[str]:
    """Lowercased words of a chunk plus its document's title, publisher and date: "Hou Junqi's
    report" is matched by the publisher field, not the text."""
    key = (id(kbase), chunk_id)
    got = _WORDS.get(key)
    if got is None:
        chunk = kbase.catalog.chunks[chunk_id]
        doc = kbase.catalog.documents[chunk.doc_id]
        text = " ".join([chunk.text, chunk.title or "", doc.title, doc.publisher, doc.published])
        got = frozenset(words_of(text))
        _WORDS[key] = got
    return got


def words_of(text: str) -> set[str]:
    """Lowercased words, numbers canonical ("2,300" -> "2300"), hyphenated parts too."""
    from kb.verifier import numbers_in

    out = set()
    for w in _WORD.findall(text):
        w = re.sub(r"['’]s$", "", w.lower()).strip("'’-")
        if w:
            out.add(w)
            out.update(p for p in re.split(r"[-'’]", w) if p)
    return out | numbers_in(text)


# A title block, running head or photo caption cut off without punctuation is not a claim.
_ENDS_LIKE_A_SENTENCE = re.compile(r"[.!?:;\"'’”)\]]\s*$")


def candidates(hits: list[Hit]) -> list[Candidate]:
    out = []
    for rank, hit in enumerate(hits):
        text = hit.chunk.text
        for position, (a, b) in enumerate(split_sentences(text)):
            span = text[a:b]
            if (
                len(span.split()) < 4
                or not re.search(r"[A-Za-z]{3}", span)
                or _REFERENCE.search(span)
                or not _ENDS_LIKE_A_SENTENCE.search(span)
            ):
                continue
            out.append(Candidate(rank, hit, a, b, position, frozenset(tokenize(span))))
    return out


def _window_scores(
    kbase: KnowledgeBase, model: str, query: str, hits: list[Hit], cands: list[Candidate]
) -> dict[tuple[str, int], float]:
    """Per sentence: the best similarity of the query to a stored window containing it."""
    vector = kbase.embedder(model).embed_query(query)
    units = {h.chunk.chunk_id: vector_units(h.chunk) for h in hits}
    ids = [uid for us in units.values() for uid, _ in us]
    stored = kbase.store(model).vectors(ids)
    out: dict[tuple[str, int], float] = {}
    by_chunk: dict[str, list[Candidate]] = {}
    for c in cands:
        by_chunk.setdefault(c.hit.chunk.chunk_id, []).append(c)
    for chunk_id, us in units.items():
        text = kbase.catalog.chunks[chunk_id].text
        for uid, utext in us:
            if uid not in stored:
                continue
            sim = float(np.dot(stored[uid], vector))
            lo, hi = _locate(text, utext)
            for c in by_chunk.get(chunk_id, []):
                if c.start < hi and c.end > lo:
                    out[c.key] = max(out.get(c.key, -1.0), sim)
    return out


def _locate(text: str, unit_text: str) -> tuple[int, int]:
    """Where a window's text sits in its chunk (the window may be prefixed with a heading)."""
    pos = text.find(unit_text)
    if pos >= 0:
        return pos, pos + len(unit_text)
    if ": " in unit_text:
        tail = unit_text.split(": ", 1)[1]
        pos = text.find(tail)
        if pos >= 0:
            return pos, pos + len(tail)
    return 0, len(text)


def _coverage(terms: tuple[str, ...], tokens: frozenset[str], stats: CorpusStats) -> float:
    if not terms:
        return 0.0
    total = sum(stats.idf(t) for t in terms)
    return sum(stats.idf(t) for t in terms if t in tokens) / total


def _phrase_in(phrase: tuple[str, ...], text_tokens: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(
        tuple(text_tokens[i : i + n]) == phrase for i in range(len(text_tokens) - n + 1)
    )


def _normalise(values: dict[tuple[str, int], float]) -> dict[tuple[str, int], float]:
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    if hi - lo < 1e-6:
        return {k: 0.5 for k in values}
    return {k: (v - lo) / (hi - lo) for k, v in values.items()}


def score_sentences(
    question: Question, hits: list[Hit], kbase: KnowledgeBase, query: str | None = None
) -> list[Candidate]:
    """Candidates of all passages with `relevance` set, best first."""
    cands = candidates(hits)
    if not cands:
        return []
    stats = corpus_stats(kbase)
    query = query or question.text
    english = question.english
    models = ["minilm"] if english else ["e5"]
    models = [m for m in models if m in kbase.embedder_names] or list(kbase.embedder_names[:1])
    raw: dict[tuple[str, int], float] = {}
    for model in models:
        for key, sim in _window_scores(kbase, model, query, hits, cands).items():
            raw[key] = raw.get(key, 0.0) + sim / len(models)
    dense = _normalise(raw)
    quoted = [tuple(tokenize(q)) for q in question.quoted]
    qtokens = set(tokenize(question.text))
    n_hits = max(1, len(hits))
    wants = question.wants
    for c in cands:
        text = c.text
        c.dense = dense.get(c.key, 0.0)
        focus = _coverage(question.focus_terms, c.tokens, stats)
        whole = _coverage(question.terms, c.tokens, stats)
        c.lexical = 0.6 * focus + 0.4 * whole if question.focus_terms else whole
        prior = 1.0 - c.rank / n_hits
        cue = 0.0
        if "number" in wants:
            cue += 0.08 if _NUMBERISH.search(text) else -0.08
        if "date" in wants and _YEARISH.search(text):
            cue += 0.08
        if wants & {"name", "place"} and _NAMEISH.search(text):
            cue += 0.04
        if quoted:
            sent_tokens = tokenize(text)
            if any(_phrase_in(p, sent_tokens) for p in quoted):
                cue += 0.12
        chunk = c.hit.chunk
        if chunk.kind == "glossary" and chunk.title and c.position == 0:
            title = tuple(tokenize(chunk.title))
            if title and set(title) <= qtokens:
                c.lead = True
                cue += 0.35
        if "definition" in wants and _DEFINES.search(text):
            cue += 0.06
        if english:
            c.relevance = 0.35 * c.dense + 0.45 * c.lexical + 0.1 * prior + cue
        else:
            # Lexical overlap with a French or Arabic question is near zero: trust e5.
            c.relevance = 0.75 * c.dense + 0.1 * c.lexical + 0.15 * prior + cue
        c.extras = {"prior": prior, "cue": cue}
    cands.sort(key=lambda c: -c.relevance)
    return cands


def _similarity(a: Candidate, b: Candidate) -> float:
    """Word overlap relative to the shorter sentence; halved when `a` brings figures that `b`
    lacks (a sentence about the same thing with new numbers is new information)."""
    if not a.tokens or not b.tokens:
        return 0.0
    overlap = len(a.tokens & b.tokens) / min(len(a.tokens), len(b.tokens))
    new_figures = {t for t in a.tokens - b.tokens if t[:1].isdigit()}
    return overlap / 2 if new_figures else overlap


def length_factor(question: Question) -> float:
    """A list question or one with several parts needs more room than a single fact: up to
    1.4x the default length (an explicit `max_words` is taken as it is)."""
    factor = 1.0 + 0.2 * max(0, len(question.parts) - 1)
    if "list" in question.wants:
        factor += 0.3
    return min(factor, 1.4)


def select_sentences(
    question: Question,
    cands: list[Candidate],
    settings: AnswerSettings,
    stats: CorpusStats | None = None,
    max_words: int | None = None,
) -> list[Candidate]:
    """A small, non-redundant, question-covering set of candidates (greedy MMR + coverage)."""
    if not cands:
        return []
    budget = max_words or round(settings.max_words * length_factor(question))
    top = cands[0].relevance
    floor = settings.min_relevance * top if top > 0 else 0.0
    pool = [c for c in cands if c.relevance >= floor]
    terms = question.focus_terms or question.terms
    weights = {t: (stats.idf(t) if stats else 1.0) for t in terms}
    total = sum(weights.values()) or 1.0
    chosen: list[Candidate] = []
    covered: set[str] = set()
    words = 0
    lam = settings.mmr_lambda
    leads = [c for c in pool if c.lead]
    if leads:
        first = leads[0]
        chosen.append(first)
        covered |= first.tokens & set(terms)
        words += first.words
    while True:
        best, best_score = None, -math.inf
        for c in pool:
            if c in chosen or (chosen and words + c.words > budget):
                continue
            redundancy = max((_similarity(c, s) for s in chosen), default=0.0)
            if redundancy > 0.7:
                continue
            gain = sum(weights[t] for t in terms if t in c.tokens and t not in covered) / total
            score = lam * c.relevance - (1 - lam) * redundancy + 0.3 * gain
            if score > best_score:
                best, best_score = c, score
        if best is None:
            break
        chosen.append(best)
        covered |= best.tokens & set(terms)
        words += best.words
    return _with_antecedents(chosen, cands, budget)


def _with_antecedents(
    chosen: list[Candidate], cands: list[Candidate], budget: int
) -> list[Candidate]:
    """A chosen "This refers to ..." sentence brings the sentence before it, when there is room:
    the quote alone would not say what "this" is."""
    by_key = {(c.hit.chunk.chunk_id, c.position): c for c in cands}
    words = sum(c.words for c in chosen)
    out = list(chosen)
    for c in chosen:
        if c.text.rstrip().endswith(":"):
            # "... a four-pronged mechanism:" announces a list: the items are the answer.
            for step in range(1, 5):
                nxt = by_key.get((c.hit.chunk.chunk_id, c.position + step))
                if nxt is None or words + nxt.words > budget * 1.4:
                    break
                if nxt not in out:
                    out.append(nxt)
                    words += nxt.words
        if c.position == 0 or not _ANAPHOR.match(c.text):
            continue
        prev = by_key.get((c.hit.chunk.chunk_id, c.position - 1))
        if prev is None or prev in out or words + prev.words > budget * 1.25:
            continue
        out.append(prev)
        words += prev.words
    return out


def order_sentences(chosen: list[Candidate]) -> list[Candidate]:
    """Lead definition first, then passages by their best sentence, in-passage order kept."""
    groups: dict[str, list[Candidate]] = {}
    for c in chosen:
        groups.setdefault(c.hit.chunk.chunk_id, []).append(c)

    def group_key(items: list[Candidate]) -> tuple[int, float]:
        return (0 if any(c.lead for c in items) else 1, -max(c.relevance for c in items))

    out = []
    for items in sorted(groups.values(), key=group_key):
        out.extend(sorted(items, key=lambda c: c.start))
    return out
