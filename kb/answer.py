"""The answer engine: retrieve, compose, cite, verify every sentence, abstain when evidence is weak.

    >>> from kb.index import KnowledgeBase
    >>> from kb.settings import Settings
    >>> kbase = KnowledgeBase(Settings())
    >>> a = answer("What are the five batches?", kbase)
    >>> print(a.text)                       # Markdown with [1] markers and a reference list
    >>> a.as_dict()["citations"][0]["quote"]  # exact span of the cited passage

`serve` and `kb ask` call this same function. Modes: "extractive" (default, no language model);
"generative" plugs in later behind `mode`, reusing `verify`, `strip_invalid_markers`, `REFUSAL`
and the evidence check (with no evidence it refuses without calling a model).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from kb.conflicts import Conflict, find_conflicts
from kb.extractive import (
    Candidate,
    CorpusStats,
    chunk_words,
    corpus_stats,
    order_sentences,
    score_sentences,
    select_sentences,
    words_of,
)
from kb.followup import condense
from kb.index import KnowledgeBase
from kb.question import Question, analyse
from kb.records import Answer, Citation, Filters, Hit, Sentence
from kb.retriever import FULL, RetrievalConfig, is_comparative, retrieve
from kb.verifier import verify

REFUSAL = "The documents in this knowledge base do not say."
EMPTY_QUESTION = "Please ask a question: the question is empty."
MODES = ("extractive", "generative")
MAX_QUESTION_CHARS = 2000
LANGUAGE_NAMES = {"fr": "French", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic"}
NON_ENGLISH_NOTE = (
    "The answer is given in English, in the documents' own words (the question was in {lang})."
)


class ModeUnavailable(ValueError):
    """The requested answer mode is not available in this installation."""


def answer(
    question: str,
    kbase: KnowledgeBase,
    history: Sequence[Any] | None = None,
    filters: Filters | None = None,
    mode: str | None = None,
    max_words: int | None = None,
    retrieval: RetrievalConfig = FULL,
) -> Answer:
    """Answer `question` from the knowledge base, every sentence cited and verified.

    `history`: earlier turns, oldest first (strings, {"question": ...} dicts or Answers);
    a follow-up is rewritten into a standalone query before retrieval.
    `retrieval`: which retrieval pipeline feeds the extractive answer (`kb eval --configs`
    compares them; the generative mode always uses the full one).
    """
    t0 = time.perf_counter()
    settings = kbase.settings.answer
    mode = mode or settings.mode
    if mode not in MODES:
        raise ModeUnavailable(f"unknown answer mode {mode!r}; known: {', '.join(MODES)}")
    if mode != "extractive":
        from kb.generative import generate_answer  # loads prompts and model only when asked

        return generate_answer(question, kbase, history, filters, max_words)
    text = " ".join(question.split())[:MAX_QUESTION_CHARS]
    if not text:
        return Answer(question, EMPTY_QUESTION, (), (), (), True, mode,
                      {"retrieve": 0.0, "answer": 0.0, "total": 0.0})
    query = condense(text, history)
    hits = retrieve(query, kbase, filters, k=settings.passages, config=retrieval)
    t1 = time.perf_counter()
    # "According to the white paper, ..." names where to look, not what is asked.
    q = analyse(kbase.document_names().strip(query))
    cands = score_sentences(q, hits, kbase, query)
    stats = corpus_stats(kbase)
    evidence, why = evidence_strength(q, hits, cands, kbase, stats)
    notes: list[str] = []
    if q.language != "en":
        notes.append(NON_ENGLISH_NOTE.format(lang=LANGUAGE_NAMES.get(q.language, q.language)))
    if not cands or evidence < settings.abstain_threshold:
        result = _abstain(question, query, q, hits, cands, mode, evidence, notes, why,
                          settings.closest_passages)
    else:
        result = _compose(question, query, q, hits, cands, stats, kbase, mode, evidence, notes,
                          max_words)
    t2 = time.perf_counter()
    timings = {
        "retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000,
    }
    return dataclasses.replace(result, timings=timings)


def evidence_strength(
    q: Question, hits: list[Hit], cands: list[Candidate], kbase: KnowledgeBase,
    stats: CorpusStats,
) -> tuple[float, list[str]]:
    """How well the passages can answer: 0 (nothing) .. ~1. The abstention signal.

    Best sentence relevance, scaled down when the specific things the question names (names,
    years) are not together in any retrieved passage, and zero when the corpus never mentions
    one of them at all ("Kenya", "Ghana"): then no passage can be about it.
    """
    if not cands:
        return 0.0, ["no passages"]
    # "!!!", "What is it?", "xxxxxxxxxx": the embedders still return their nearest passages,
    # but a question that names nothing, or only words the corpus never uses, has no evidence.
    if not q.terms:
        return 0.0, ["the question names nothing to look for"]
    if q.english and not any(stats.stem_df(t) for t in q.terms):
        return 0.0, ["the documents never use any of the question's words"]
    best = max(c.relevance for c in cands)
    anchors = [a for a in q.anchors if _is_strong_anchor(a)]
    unknown = [a for a in anchors if not a.isdigit() and stats.word_df(a) == 0]
    if unknown:
        return 0.0, [f"the documents never mention {', '.join(unknown)}"]
    # Names of the sources ("Xinhua", "Tricontinental", "Hou Junqi") say where to look, not
    # what to find; a comparison names two of them, which no one sentence can hold.
    anchors = [a for a in anchors if a not in _source_words(kbase)]
    if "number" in q.wants:
        # "How many/how much" needs a figure: a sentence without one cannot answer it.
        best = max(c.relevance * (1.0 if _has_figure(c.text) else 0.6) for c in cands)
    if not anchors:
        return best, []
    weights = {a: math.log(1 + stats.n / (1 + stats.word_df(a))) for a in anchors}
    total = sum(weights.values())
    best_score, best_cov = 0.0, 0.0
    for c in cands:
        words = _window_words(kbase, c)
        cov = sum(w for a, w in weights.items() if a in words) / total
        score = c.relevance * (0.3 + 0.7 * cov**3)
        if "number" in q.wants and not _has_figure(c.text):
            score *= 0.6
        if any(a.isdigit() and a not in words for a in anchors):
            score *= 0.7  # the question's year is not near this sentence: another period
        if score > best_score:
            best_score, best_cov = score, cov
    why = [] if best_cov == 1 else [f"anchor coverage {best_cov:.2f}"]
    return best_score, why


_FIGURE = re.compile(r"\d+(?:[.,]\d+)*\s*(%|percent|million|billion|yuan|mu\b)|"
                     r"\b(?!(?:1[89]|20)\d\d\b)\d[\d,.]*\b")


def _has_figure(text: str) -> bool:
    """A number that is not a year ("775,000", "42 percent", "1.4 billion")."""
    return bool(_FIGURE.search(text))


def _source_words(kbase: KnowledgeBase) -> set[str]:
    words: set[str] = set()
    for d in kbase.catalog.documents.values():
        words |= words_of(f"{d.title} {d.publisher}")
    return {w for w in words if not w.isdigit()}


def _window_words(kbase: KnowledgeBase, c: Candidate) -> set[str]:
    """Words of a sentence, its neighbours and its document's metadata: the specific things a
    question names must be near the sentence that answers it, not anywhere in a long passage."""
    text = c.hit.chunk.text
    lo = text.rfind(". ", 0, max(0, c.start - 1))
    lo = text.rfind(". ", 0, lo) if lo > 0 else 0
    hi = text.find(". ", c.end)
    hi = len(text) if hi < 0 else (text.find(". ", hi + 2) if text.find(". ", hi + 2) > 0
                                   else len(text))
    d = c.hit.document
    meta = " ".join([c.hit.chunk.title or "", c.hit.chunk.section, d.title, d.publisher,
                     d.published])
    words = words_of(text[max(0, lo) : hi] + " " + meta)
    if c.hit.chunk.kind in ("case", "box"):
        # A case study is one story cut into chunks: its place names count throughout.
        catalog = kbase.catalog
        for chunk_id in catalog.chunk_ids(c.hit.chunk.doc_id):
            other = catalog.chunks[chunk_id]
            if other.section == c.hit.chunk.section and other.kind == c.hit.chunk.kind:
                words |= chunk_words(kbase, chunk_id)
    return words


def _is_strong_anchor(anchor: str) -> bool:
    if anchor.isdigit():
        return len(anchor) == 4 and anchor[:2] in {"19", "20"}  # years; figures may be rounded
    return len(anchor) >= 3 and anchor.replace("-", "").isalpha()


def _citation_for(
    c: Candidate, numbers: dict[str, int], citations: list[Citation]
) -> int:
    """Citation number for a candidate: one citation per sentence span, numbered in order."""
    key = f"{c.hit.chunk.chunk_id}:{c.start}:{c.end}"
    if key not in numbers:
        numbers[key] = len(citations) + 1
        citations.append(Citation(numbers[key], c.hit.chunk, c.hit.document, c.start, c.end))
    return numbers[key]


def _compose(
    question: str, query: str, q: Question, hits: list[Hit], cands: list[Candidate],
    stats: CorpusStats, kbase: KnowledgeBase, mode: str, evidence: float, notes: list[str],
    max_words: int | None,
) -> Answer:
    settings = kbase.settings.answer
    chosen = select_sentences(q, cands, settings, stats, max_words)
    conflicts: list[Conflict] = []
    if "number" in q.wants:  # only a question about a figure can get conflicting figures
        floor = 0.6 * cands[0].relevance
        conflicts = find_conflicts(chosen, [c for c in cands if c.relevance >= floor][:20])
    for conflict in conflicts:
        if conflict.b not in chosen:
            chosen.append(conflict.b)
    ordered = order_sentences(chosen)
    numbers: dict[str, int] = {}
    citations: list[Citation] = []
    sentences: list[Sentence] = []
    for c in ordered:
        n = _citation_for(c, numbers, citations)
        verdict = verify(c.text, [c.hit.chunk.text], settings.min_content_coverage)
        if not verdict.supported:
            continue  # cannot happen for a verbatim span unless offsets are wrong
        sentences.append(Sentence(c.text, (n,), True))
    used = {n for s in sentences for n in s.citations}
    citations = [c for c in citations if c.n in used]
    for conflict in conflicts:
        notes.append(_conflict_note(conflict, numbers))
    notes.extend(_uncovered_parts(q, ordered, cands, stats))
    body = " ".join(f"{s.text} [{s.citations[0]}]" for s in sentences)
    text = _markdown(body, notes, citations)
    return Answer(question, text, tuple(sentences), tuple(citations), tuple(hits), False, mode,
                  query=query, notes=tuple(notes), evidence=evidence, language=q.language)


def _source_label(c: Candidate) -> str:
    d = c.hit.document
    return f"*{d.title}* ({d.publisher.split(' (')[0]}, {d.published or 'undated'})"


def _conflict_note(conflict: Conflict, numbers: dict[str, int]) -> str:
    def ref(c: Candidate) -> int:
        return numbers.get(f"{c.hit.chunk.chunk_id}:{c.start}:{c.end}", 0)

    a, b = conflict.a, conflict.b
    return (
        f"The sources differ: {_source_label(a)} gives {conflict.fig_a.phrase} [{ref(a)}]; "
        f"{_source_label(b)} gives {conflict.fig_b.phrase} [{ref(b)}]."
    )


def _uncovered_parts(
    q: Question, chosen: list[Candidate], cands: list[Candidate], stats: CorpusStats
) -> list[str]:
    """For a multi-part question: the parts no passage speaks to (answer the rest)."""
    if len(q.parts) < 2:
        return []
    out = []
    for part in q.parts:
        if is_comparative(part.text):  # "do the sources agree?" is answered by conflict notes
            continue
        terms = [t for t in part.terms if stats.idf(t) > 2.0]  # the part's specific words
        if len(terms) < 2:
            continue
        total = sum(stats.idf(t) for t in terms)
        best = max(sum(stats.idf(t) for t in terms if t in c.tokens) / total for c in cands)
        if best < 0.15:
            out.append(f'{REFUSAL[:-1]} about this part of the question: "{part.text}"')
    return out


def _reference(c: Citation) -> str:
    d, ch = c.document, c.chunk
    parts = [f"*{d.title}*", f"{d.publisher.split(' (')[0]}, {d.published or 'undated'}"]
    if ch.section:
        parts.append(ch.section)
    if ch.page_start:
        parts.append(f"p. {ch.page_start}")
    return f"[{c.n}] " + " — ".join(parts)


def _markdown(body: str, notes: list[str], citations: list[Citation]) -> str:
    lines = [body] if body else []
    lines += notes
    if citations:
        lines.append("\n".join(_reference(c) for c in citations))
    return "\n\n".join(lines)


def _abstain(
    question: str, query: str, q: Question, hits: list[Hit], cands: list[Candidate], mode: str,
    evidence: float, notes: list[str], why: list[str], n_closest: int = 3,
) -> Answer:
    """REFUSAL, then the closest passages (each cited by its best sentence), no claims."""
    closest: list[Citation] = []
    seen: set[str] = set()
    for c in cands:
        if c.hit.chunk.chunk_id in seen:
            continue
        seen.add(c.hit.chunk.chunk_id)
        closest.append(Citation(len(closest) + 1, c.hit.chunk, c.hit.document, c.start, c.end))
        if len(closest) >= n_closest:
            break
    lines = [REFUSAL]
    if closest:
        lines.append("The closest passages are:")
        lines += [f'[{c.n}] "{c.quote}"' for c in closest]
    text = "\n\n".join(["\n".join(lines[:1]), *(["\n".join(lines[1:])] if closest else []),
                        *notes])
    if closest:
        text += "\n\n" + "\n".join(_reference(c) for c in closest)
    return Answer(question, text, (), tuple(closest), tuple(hits), True, mode, query=query,
                  notes=tuple([*notes, *why]), evidence=evidence, language=q.language)
