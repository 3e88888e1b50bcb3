"""Hybrid retrieval: dense (one Chroma collection per embedder) + BM25, fused, re-ranked.

    >>> hits = retrieve("What are the five batches?", kbase, k=5)
    >>> hits[0].chunk.title
    'Five Batches'

Stages: the query is expanded with the other names of any measure it names (alias table); each
retriever returns its candidates (filters applied inside dense and lexical search alike); the
lists are fused; passages of a document the question names ("the white paper") are favoured;
a second-stage scorer re-ranks the fused candidates; near-duplicates are folded.

Fusion is weighted reciprocal rank fusion (Cormack et al. 2009): the retrievers' scores live on
different scales (cosine vs. unbounded BM25), RRF needs no score calibration, and a passage that
only one retriever finds (an exact figure that only BM25 matches) still enters the fused list.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass

from kb.index import KnowledgeBase
from kb.language import detect_language
from kb.lexical import tokenize
from kb.records import Filters, Hit

MAX_QUERY_CHARS = 2000  # beyond this a "question" is a pasted document: use its head


@dataclass(frozen=True)
class RetrievalConfig:
    """Which stages run, and their weights; `kb eval --retrieval` compares these side by side."""

    name: str = "full"
    dense: tuple[str, ...] = ("minilm", "e5")
    lexical: bool = True
    aliases: bool = True
    doc_boost: float = 0.5  # fused score x (1 + doc_boost) for a document the question names
    rerank: bool = True
    w_minilm: float = 1.0
    w_e5: float = 1.0
    w_bm25: float = 1.5
    w_bm25_foreign: float = 0.3  # BM25 barely matches a French or Arabic question
    w_coverage: float = 0.5  # re-rank: share of the question's terms the passage holds
    w_phrase: float = 0.3  # re-rank: share of the question's word pairs found side by side
    dedup: float = 0.9  # token-set Jaccard above which two passages count as one
    reference_penalty: float = 0.5  # fused score x this for a bibliography-like note
    translate: bool = True  # non-English questions: add lexicon translations to BM25
    translate_coverage: bool = True  # non-English: re-rank coverage over the translation
    guarantee_top: int = 5  # each retriever's first choice ranks within this (0: off)
    diversify: bool = True  # comparative questions get passages from several documents
    parts: bool = False  # also search each sentence of a multi-part question
    w_part: float = 0.5  # weight of a part's rankings relative to the whole question's


FULL = RetrievalConfig()
DENSE = RetrievalConfig(
    name="dense", dense=("minilm",), lexical=False, aliases=False, doc_boost=0.0, rerank=False
)
E5 = RetrievalConfig(
    name="e5", dense=("e5",), lexical=False, aliases=False, doc_boost=0.0, rerank=False
)
BM25 = RetrievalConfig(name="bm25", dense=(), aliases=False, doc_boost=0.0, rerank=False)
HYBRID = RetrievalConfig(name="hybrid", aliases=False, doc_boost=0.0, rerank=False)


def retrieve(
    query: str,
    kbase: KnowledgeBase,
    filters: Filters | None = None,
    k: int | None = None,
    config: RetrievalConfig = FULL,
    timings: dict[str, float] | None = None,
) -> list[Hit]:
    """Ranked passages for `query`, best first (at most `k`, default from settings)."""
    t0 = time.perf_counter()
    k = k or kbase.settings.retrieval.k
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    filters = filters or Filters()
    n_cand = max(kbase.settings.retrieval.candidates, k)
    catalog = kbase.catalog
    allowed = None
    if not filters.is_empty():
        allowed = {
            cid for cid, c in catalog.chunks.items()
            if filters.accepts(c, catalog.documents[c.doc_id])
        }
        if not allowed:
            return []

    language = detect_language(query)
    english = language == "en"
    names = kbase.document_names()
    named_docs = names.mentioned(query) if config.doc_boost else set()
    # "According to Hou Junqi's report, ..." names where to look, not what to look for.
    content = names.strip(query) if config.doc_boost else query
    parts = question_parts(content) if config.parts else []
    rankings: dict[str, list[tuple[str, float]]] = {}
    weights: dict[str, float] = {}
    for label, text, share in [("", content, 1.0), *((f"p{i}:", p, config.w_part)
                                                      for i, p in enumerate(parts, 1))]:
        for name, ranking in _search(text, kbase, config, filters, allowed, n_cand,
                                     language).items():
            rankings[label + name] = ranking
            weights[label + name] = share * _weight(config, name, english)
    t1 = time.perf_counter()

    fused: dict[str, float] = defaultdict(float)
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    rrf_k = kbase.settings.retrieval.rrf_k
    for name, ranking in rankings.items():
        for rank, (chunk_id, score) in enumerate(ranking):
            fused[chunk_id] += weights[name] / (rrf_k + rank + 1)
            scores[chunk_id][name] = round(score, 4)
            scores[chunk_id][f"{name}_rank"] = rank + 1
    for chunk_id in fused:
        chunk = catalog.chunks[chunk_id]
        if chunk.doc_id in named_docs:
            fused[chunk_id] *= 1.0 + config.doc_boost
            scores[chunk_id]["doc_named"] = 1
        if is_reference(chunk.text, chunk.kind):
            fused[chunk_id] *= config.reference_penalty
            scores[chunk_id]["reference"] = 1
    order = sorted(fused, key=lambda c: (-fused[c], c))[: max(n_cand, k)]
    final = {c: fused[c] for c in order}
    if config.rerank:
        # A French question shares no words with an English passage: its coverage is measured
        # with the lexicon's English words for it (and its own names and figures).
        covered = content
        if not english and config.translate_coverage:
            covered = f"{content} {kbase.lexicon().translate(content, language)}"
        final = _rerank(covered, _expand(covered, kbase, config), order, final, scores, kbase,
                        config)
    order = sorted(final, key=lambda c: (-final[c], c))
    order = _fold_duplicates(order, kbase, config.dedup)
    if config.guarantee_top:
        order = _guarantee_firsts(order, [rankings[n] for n in rankings if ":" not in n
                                          and weights[n] > 0], config.guarantee_top)
    if config.diversify and (len(named_docs) >= 2 or is_comparative(query)):
        order = _diversify(order, kbase, k)
    order = order[:k]
    hits = []
    for chunk_id in order:
        chunk = catalog.chunks[chunk_id]
        scores[chunk_id]["final"] = round(final[chunk_id], 5)
        hits.append(Hit(chunk, catalog.documents[chunk.doc_id], final[chunk_id], scores[chunk_id]))
    if timings is not None:
        timings["search"] = (t1 - t0) * 1000
        timings["fuse"] = (time.perf_counter() - t1) * 1000
    return hits


_CITATION_MARKS = re.compile(r"https?://|www\.|accessed|retrieved|\bpp?\.\s*\d|\(\d{4}\)|\bvol\.",
                             re.IGNORECASE)


def is_reference(text: str, kind: str) -> bool:
    """A bibliography entry or source note (URLs, "accessed", "(2020)", "pp. 6"): it names where
    a fact came from but rarely states it, so it should not crowd out passages that do."""
    if kind != "footnote":
        return False
    marks = len(_CITATION_MARKS.findall(text))
    return marks >= 1 and marks * 40 >= len(text.split())


def _weight(config: RetrievalConfig, name: str, english: bool) -> float:
    if name == "bm25":
        return config.w_bm25 if english else config.w_bm25_foreign
    # MiniLM only knows English: for other languages its ranking is noise.
    return getattr(config, f"w_{name}") if (english or name != "minilm") else 0.0


def _expand(query: str, kbase: KnowledgeBase, config: RetrievalConfig) -> str:
    """The query plus the other names of any measure it names (for lexical matching)."""
    expansions = kbase.aliases().expand(query) if config.aliases else []
    return " ".join([query, *expansions])


def _search(
    query: str,
    kbase: KnowledgeBase,
    config: RetrievalConfig,
    filters: Filters,
    allowed: set[str] | None,
    n_cand: int,
    language: str,
) -> dict[str, list[tuple[str, float]]]:
    """Each retriever's ranked (chunk id, score) candidates for one query text."""
    catalog = kbase.catalog
    english = language == "en"
    rankings: dict[str, list[tuple[str, float]]] = {}
    for name in config.dense:
        if name not in kbase.embedder_names or not _weight(config, name, english):
            continue
        vector = kbase.embedder(name).embed_query(query)
        found = kbase.store(name).query(vector, n_cand * 4, where=filters.chroma_where())
        best: dict[str, float] = {}  # a chunk ranks by its best window (max-pooling)
        for h in found:
            if h.chunk_id in catalog.chunks and h.chunk_id not in best:
                best[h.chunk_id] = h.similarity
        rankings[name] = list(best.items())[:n_cand]
    if config.lexical:
        lexical_query = query
        if not english and config.translate:
            lexical_query = f"{query} {kbase.lexicon().translate(query, language)}"
        lexical_query = _expand(lexical_query, kbase, config)
        rankings["bm25"] = kbase.lexical().search(lexical_query, n_cand, allowed)
    return rankings


_PART_SPLIT = re.compile(r"(?<=[?.;])\s+|\s+(?:and also|and then|as well as)\s+", re.IGNORECASE)


def question_parts(query: str) -> list[str]:
    """The sentences of a multi-part question ("How many ...? And when ...?"), each searched on
    its own as well, so every part finds its passage. One part (or tiny parts): none."""
    parts = [p.strip() for p in _PART_SPLIT.split(query) if len(p.split()) >= 4]
    return parts if len(parts) >= 2 else []


def _rerank(
    query: str,
    lexical_query: str,
    order: list[str],
    fused: dict[str, float],
    scores: dict[str, dict[str, float]],
    kbase: KnowledgeBase,
    config: RetrievalConfig,
) -> dict[str, float]:
    """Second stage over the fused candidates: the fused score, normalised to the best one,
    plus how much of the question the passage covers (its terms, or an alias of them) and how
    many of the question's adjacent word pairs it has side by side (phrases, not just words)."""
    sequence = tokenize(query)
    terms = set(sequence)
    pairs = set(zip(sequence, sequence[1:], strict=False))  # "slip back", "back poverti"
    alias_terms = set(tokenize(lexical_query)) - terms
    top = max(fused.values())
    out = {}
    for chunk_id in order:
        chunk = kbase.catalog.chunks[chunk_id]
        tokens = tokenize(" ".join(p for p in (chunk.title, chunk.section, chunk.text) if p))
        have = set(tokens)
        coverage = len(terms & have) / len(terms) if terms else 0.0
        if alias_terms & have:
            coverage = min(1.0, coverage + 0.1)
        own_pairs = set(zip(tokens, tokens[1:], strict=False))
        phrases = len(pairs & own_pairs) / len(pairs) if pairs else 0.0
        score = fused[chunk_id] / top + config.w_coverage * coverage + config.w_phrase * phrases
        scores[chunk_id]["coverage"] = round(coverage, 3)
        scores[chunk_id]["phrases"] = round(phrases, 3)
        out[chunk_id] = score
    return out


_COMPARATIVE = re.compile(
    r"\b(?:agree|disagree|differ\w*|compar\w*|contrast|sources|documents|both|versus|vs\.?"
    r"|same (?:thing|number|figure)s?|consistent|conflict\w*)\b",
    re.IGNORECASE,
)


def _guarantee_firsts(
    order: list[str], rankings: list[list[tuple[str, float]]], within: int
) -> list[str]:
    """Each retriever's first choice ranks within the top `within`: a passage that one retriever
    is surest of (BM25's exact phrase, e5's closest meaning) is not buried by fusion because the
    others missed it."""
    firsts = [r[0][0] for r in rankings if r and r[0][0] in order]
    for chunk_id in dict.fromkeys(firsts):
        pos = order.index(chunk_id)
        if pos >= within:
            order.pop(pos)
            order.insert(within - 1, chunk_id)
    return order


def is_comparative(text: str) -> bool:
    """Does the question ask whether sources agree, differ, or compare?"""
    return bool(_COMPARATIVE.search(text))


def _diversify(order: list[str], kbase: KnowledgeBase, k: int) -> list[str]:
    """For "do the sources agree?" questions: the best passage of each document that has a
    candidate in the top 2k moves into the top k (in rank order), the rest follow."""
    chunks = kbase.catalog.chunks
    firsts: dict[str, str] = {}
    for chunk_id in order[: 2 * k]:
        firsts.setdefault(chunks[chunk_id].doc_id, chunk_id)
    promoted = set(list(firsts.values())[: max(1, k // 2)])
    head = [c for c in order if c in promoted][:k]
    rest = [c for c in order if c not in promoted]
    room = k - len(head)
    top = sorted(head + rest[:room], key=order.index)
    return top + rest[room:]


def _fold_duplicates(order: list[str], kbase: KnowledgeBase, threshold: float) -> list[str]:
    """Drop a passage nearly identical to a better-ranked one (overlapping chunks of the same
    text, or the same fact copied across documents), unless its numbers differ: a second source
    that gives a different figure must stay visible."""
    kept: list[tuple[str, set[str], set[str]]] = []
    for chunk_id in order:
        text = kbase.catalog.chunks[chunk_id].text
        toks = set(tokenize(text))
        nums = {t for t in toks if t[:1].isdigit()}
        duplicate = False
        for _, other, other_nums in kept:
            union = toks | other
            if union and len(toks & other) / len(union) >= threshold and nums == other_nums:
                duplicate = True
                break
        if not duplicate:
            kept.append((chunk_id, toks, nums))
    return [c for c, _, _ in kept]
