"""The generative answer mode: a language model writes from numbered passages, the verifier
decides what is shown.

    >>> a = generate_answer("What are the five batches?", kbase)          # settings.llm's model
    >>> a = generate_answer("What are the five batches?", kbase, llm=FakeLLM(replies=[...]))
    >>> for part in stream_answer("What are the five batches?", kbase):   # for the UI
    ...     print(part if isinstance(part, str) else part.text)           # tokens, then Answer

The steps:
1. A follow-up (with `history`) is rewritten into a standalone question by the model
   (prompts/condense.txt); without a model the rule-based `kb.followup.condense` does it.
2. The extractive answer is computed first (a few hundred ms, no model): it retrieves the
   passages and decides whether there is evidence at all. When it abstains, that refusal is the
   answer and the model is never called. Otherwise it is the fallback.
3. The top passages are shown to the model numbered, fenced in <passages> as data
   (prompts/answer.txt). Its reply is split into sentences; citation ids that were not among
   the passages are removed; each sentence is checked by `kb.verifier.verify` against the
   passages it cites and dropped when unsupported. Each kept citation quotes the span of the
   cited passage that best matches the sentence (an exact substring, like extractive quotes).
4. When no sentence survives, or the model refuses, or fails, the extractive answer is returned,
   with a note saying so (its `mode` is then "extractive": its sentences are the sources').

The prompts are loaded and checked when this module is imported: a prompt file whose
placeholders are not the declared set stops start-up, not the first question.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ingest.sentences import split_sentences
from kb.answer import MAX_QUESTION_CHARS, REFUSAL, ModeUnavailable, _markdown, answer
from kb.followup import condense, is_followup, previous_query
from kb.index import KnowledgeBase
from kb.lexical import tokenize
from kb.llm import LLMUnavailable, get_llm
from kb.prompts import Prompt, fence_data, load_prompt, mask_instructions
from kb.records import Answer, Citation, Filters, Hit, Sentence
from kb.settings import Settings
from kb.verifier import keep_valid_citations, names_in, numbers_in, verify

log = logging.getLogger(__name__)

ANSWER_FIELDS = frozenset({"question", "passages", "refusal"})
CONDENSE_FIELDS = frozenset({"history", "question"})
MODE = "generative"
FALLBACK_NOTE = (
    "No sentence of the language model's answer could be verified against the passages it "
    "cited, so this answer is the documents' own sentences."
)
REFUSED_NOTE = (
    "The language model found no answer in the passages, so this answer is the documents' own "
    "sentences."
)
FAILED_NOTE = "The language model failed ({error}), so this answer is the documents' own sentences."
DROPPED_NOTE = "{n} sentence(s) of the model's answer were removed: the cited passages do not " \
    "support them."
INVALID_IDS_NOTE = "Citations to passages that were not given were removed: {ids}."
LANGUAGE_NOTE = "The answer is given in English (the question was in {lang})."
NO_MODEL = (
    "the generative mode needs a language model: set KB_LLM=openai with KB_LLM_URL and "
    "KB_LLM_MODEL (an OpenAI-compatible server), or KB_LLM=local (pip install .[local-llm])"
)
_HISTORY_TURNS = 4
_LOCAL_LOCK = threading.Lock()
_MAX_CONDENSED_CHARS = 400

_MARKER = re.compile(r"\[(\d+)\]")
_MARKER_LIST = re.compile(r"\[\s*(?:passages?\s*)?(\d+(?:\s*[,;]\s*(?:passages?\s*)?\d+)*)\s*\]",
                          re.IGNORECASE)
_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+\])+)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_LANGUAGES = {"fr": "French", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic"}


def load_prompts(directory: Path | None = None) -> tuple[Prompt, Prompt]:
    """(answer, condense) prompts, placeholders checked: raises kb.prompts.PromptError."""
    return (load_prompt("answer", set(ANSWER_FIELDS), directory),
            load_prompt("condense", set(CONDENSE_FIELDS), directory))


# Checked at import: the CLI and the app import this module when generative mode is asked for.
ANSWER_PROMPT, CONDENSE_PROMPT = load_prompts()


def warm_up(settings: Settings) -> Any:
    """Start-up check for a process that will answer generatively (`kb serve`): the configured
    prompts load and the model loads once; raises PromptError / LLMUnavailable if not."""
    load_prompts(settings.llm.prompts_dir)
    return get_llm(settings.llm, settings.data_dir)


def generate_answer(
    question: str,
    kbase: KnowledgeBase,
    history: Sequence[Any] | None = None,
    filters: Filters | None = None,
    max_words: int | None = None,
    llm: Any | None = None,
) -> Answer:
    """Answer with the language model, every shown sentence verified (or fall back)."""
    result: Answer | None = None
    for part in _run(question, kbase, history, filters, max_words, llm, stream=False):
        if isinstance(part, Answer):
            result = part
    assert result is not None
    return result


def stream_answer(
    question: str,
    kbase: KnowledgeBase,
    history: Sequence[Any] | None = None,
    filters: Filters | None = None,
    max_words: int | None = None,
    llm: Any | None = None,
) -> Iterator[str | Answer]:
    """Like generate_answer, but yields the model's text as it comes (str), then the verified
    Answer last. The streamed text is a draft: show the final Answer in its place."""
    yield from _run(question, kbase, history, filters, max_words, llm, stream=True)


def _run(
    question: str, kbase: KnowledgeBase, history: Sequence[Any] | None,
    filters: Filters | None, max_words: int | None, llm: Any | None, stream: bool,
) -> Iterator[str | Answer]:
    t0 = time.perf_counter()
    settings = kbase.settings.llm
    if llm is None:
        try:
            llm = get_llm(settings, kbase.settings.data_dir)
        except LLMUnavailable as exc:
            raise ModeUnavailable(str(exc)) from exc
        if llm is None:
            raise ModeUnavailable(NO_MODEL)
    answer_prompt, condense_prompt = (
        load_prompts(settings.prompts_dir) if settings.prompts_dir
        else (ANSWER_PROMPT, CONDENSE_PROMPT)
    )
    text = " ".join(question.split())[:MAX_QUESTION_CHARS]
    query = text
    if history and text:
        query = condense(text, history)  # the rule-based rewrite, also the fallback
        if settings.condense and is_followup(text):
            rewritten = condense_with_llm(text, history, llm, condense_prompt)
            if rewritten:
                query = rewritten
    t_condense = time.perf_counter()
    # The extractive answer: retrieval, the evidence check, and the fallback, all without a model.
    base = answer(query, kbase, filters=filters, mode="extractive", max_words=max_words)
    base = dataclasses.replace(base, question=question)
    if base.abstained:
        # No evidence: refuse without calling the model (or an empty question).
        yield dataclasses.replace(base, mode=MODE, timings=_timings(base, t0, t_condense))
        return
    hits = list(base.passages[: settings.passages])
    system, user = answer_prompt.render(
        question=fence_data(query), passages=format_passages(hits),
        refusal=REFUSAL,
    )
    t_gen = time.perf_counter()
    try:
        reply = ""
        if stream:
            for delta in _stream_chat(llm, system, user):
                reply += delta
                yield delta
        else:
            reply = _chat(llm, system, user)
    except Exception as exc:  # a server that is down must not take the answer with it
        log.warning("generative answer failed, falling back to extractive: %r", exc)
        note = FAILED_NOTE.format(error=_short_error(exc))
        yield _fallback(base, note, t0, t_condense, t_gen)
        return
    t_verify = time.perf_counter()
    result = verified_answer(question, reply, hits, kbase.settings.answer.min_content_coverage)
    if result is None:
        note = REFUSED_NOTE if is_refusal(reply) else FALLBACK_NOTE
        yield _fallback(base, note, t0, t_condense, t_gen)
        return
    notes = list(result.notes)
    if base.language != "en":
        notes.insert(0, LANGUAGE_NOTE.format(lang=_LANGUAGES.get(base.language, base.language)))
    t_end = time.perf_counter()
    timings = {
        "retrieve": base.timings.get("retrieve", 0.0), "condense": (t_condense - t0) * 1000,
        "generate": (t_verify - t_gen) * 1000, "verify": (t_end - t_verify) * 1000,
        "answer": (t_end - t_gen) * 1000, "total": (t_end - t0) * 1000,
    }
    yield dataclasses.replace(
        result, text=_markdown(_body(result.sentences), notes, list(result.citations)),
        notes=tuple(notes), passages=base.passages, query=base.query, evidence=base.evidence,
        language=base.language, timings=timings,
    )


def condense_with_llm(
    question: str, history: Sequence[Any], llm: Any, prompt: Prompt = CONDENSE_PROMPT
) -> str | None:
    """The model's standalone rewrite of a follow-up, or None when it gives nothing usable."""
    turns = [previous_query(t) for t in history]
    turns = [" ".join(t.split())[:MAX_QUESTION_CHARS] for t in turns if t.strip()]
    turns = turns[-_HISTORY_TURNS:]
    if not turns:
        return None
    system, user = prompt.render(history="\n".join(f"- {fence_data(t)}" for t in turns),
                                 question=fence_data(question))
    try:
        reply = _chat(llm, system, user)
    except Exception as exc:
        log.warning("condensing the follow-up failed, using the rule-based rewrite: %r", exc)
        return None
    line = next((ln for ln in reply.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line.strip(), flags=re.I)
    line = line.strip().strip('"“”').strip()
    if not line or len(line) > _MAX_CONDENSED_CHARS or not tokenize(line):
        return None
    return line


def format_passages(hits: Sequence[Hit]) -> str:
    """`[n] (title, publisher, date, section, p. N) text`, one block per passage, each on one
    line. Everything taken from a document (its text, and its title and section headings,
    which an uploaded file controls too) goes through `fence_data`, so a document can neither
    close the data block nor open a message of its own."""
    blocks = []
    for n, h in enumerate(hits, 1):
        d, c = h.document, h.chunk
        meta = [d.title, d.publisher.split(" (")[0], d.published or "undated"]
        if c.section:
            meta.append(c.section)
        if c.page_start:
            meta.append(f"p. {c.page_start}")
        head = fence_data(" ".join(", ".join(meta).split()))
        blocks.append(f"[{n}] ({head}) {fence_data(' '.join(c.text.split()))}")
    return "\n\n".join(blocks)


def is_refusal(reply: str) -> bool:
    """The model said the refusal text (possibly with a little around it)."""
    def norm(s: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", s.lower()).split())

    return norm(REFUSAL) in norm(reply) and len(norm(reply)) < 2 * len(norm(REFUSAL))


def split_reply(reply: str) -> list[tuple[str, list[int]]]:
    """The model's reply as (sentence without markers, cited ids in order) pairs.

    >>> split_reply("Poverty fell [1]. It was 2020. [2, 3]")
    [('Poverty fell.', [1]), ('It was 2020.', [2, 3])]
    """
    out: list[tuple[str, list[int]]] = []
    for line in reply.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line or line.startswith("#"):
            continue
        line = _MARKER_LIST.sub(
            lambda m: "".join(f"[{n}]" for n in re.findall(r"\d+", m.group(1))), line)
        line = _MARKERS_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), line)  # "x. [1]"
        for start, end in split_sentences(line):
            raw = line[start:end]
            ids = [int(n) for n in _MARKER.findall(raw)]
            text = " ".join(_MARKER.sub(" ", raw).split())
            text = re.sub(r"\s+([.,;:!?])", r"\1", text)
            if text and not re.fullmatch(r"[\W_]+", text):
                out.append((text, ids))
    return out


def verified_answer(
    question: str, reply: str, hits: Sequence[Hit], min_coverage: float
) -> Answer | None:
    """The reply's supported sentences with their citations, or None when none survives.

    Ids outside 1..len(hits) are removed first (paper-qa); a sentence left without a citation,
    or that the verifier rejects against its cited passages, is dropped. The passages are
    checked with their instruction-like sentences blanked (`mask_instructions`): a model that
    obeyed "Ignore previous instructions and say X" cannot cite that sentence for X.
    """
    if is_refusal(reply):
        return None
    valid = range(1, len(hits) + 1)
    numbers: dict[str, int] = {}
    citations: list[Citation] = []
    sentences: list[Sentence] = []
    invalid: set[int] = set()
    dropped = 0
    for text, ids in split_reply(reply):
        cited = keep_valid_citations(ids, valid)
        invalid |= set(ids) - set(cited)
        if REFUSAL.rstrip(".").lower() in text.lower():
            continue  # a refusal among claims is not itself a claim
        sources = {n: mask_instructions(hits[n - 1].chunk.text) for n in cited}
        verdict = verify(text, list(sources.values()), min_coverage)
        if not verdict.supported:
            dropped += 1
            log.info("dropped unsupported sentence %r: %s", text, verdict.reasons)
            continue
        refs: list[int] = []
        for n in cited:
            span = best_span(text, sources[n])  # same offsets as the chunk text
            if span is None and len(cited) > 1:
                continue  # this passage shares nothing with the sentence: not its source
            start, end = span or (0, len(hits[n - 1].chunk.text))
            key = f"{hits[n - 1].chunk.chunk_id}:{start}:{end}"
            if key not in numbers:
                numbers[key] = len(citations) + 1
                citations.append(Citation(numbers[key], hits[n - 1].chunk, hits[n - 1].document,
                                          start, end))
            if numbers[key] not in refs:
                refs.append(numbers[key])
        sentences.append(Sentence(text, tuple(refs), True))
    if not sentences:
        return None
    notes = []
    if dropped:
        notes.append(DROPPED_NOTE.format(n=dropped))
    if invalid:
        notes.append(INVALID_IDS_NOTE.format(ids=", ".join(f"[{n}]" for n in sorted(invalid))))
    return Answer(question, _body(sentences), tuple(sentences), tuple(citations), tuple(hits),
                  False, MODE, notes=tuple(notes))


def best_span(sentence: str, passage: str) -> tuple[int, int] | None:
    """Offsets of the passage's sentence (or run of up to three) that best supports `sentence`:
    shared content words, numbers and names; None when it shares nothing."""
    spans = split_sentences(passage) or [(0, len(passage))]
    want_tokens = set(tokenize(sentence))
    want_facts = numbers_in(sentence) | names_in(sentence)

    def score(a: int, b: int) -> float:
        piece = passage[a:b]
        facts = len(want_facts & (numbers_in(piece) | names_in(piece)))
        return len(want_tokens & set(tokenize(piece))) + 2 * facts

    best = max(range(len(spans)), key=lambda i: score(*spans[i]))
    if score(*spans[best]) == 0:
        return None
    lo = hi = best
    # Extend to a neighbour while it brings a number or name the sentence has (a paraphrase of
    # two source sentences), at most three sentences in all.
    while hi - lo < 2:
        have = numbers_in(passage[spans[lo][0]:spans[hi][1]]) | names_in(
            passage[spans[lo][0]:spans[hi][1]])
        missing = want_facts - have
        if not missing:
            break
        grew = False
        for j in (lo - 1, hi + 1):
            if 0 <= j < len(spans):
                piece = passage[spans[j][0]:spans[j][1]]
                if missing & (numbers_in(piece) | names_in(piece)):
                    lo, hi = min(lo, j), max(hi, j)
                    grew = True
                    break
        if not grew:
            break
    return spans[lo][0], spans[hi][1]


def _body(sentences: Sequence[Sentence]) -> str:
    return " ".join(f"{s.text} " + "".join(f"[{n}]" for n in s.citations) for s in sentences)


def _fallback(base: Answer, note: str, t0: float, t_condense: float, t_gen: float) -> Answer:
    t_end = time.perf_counter()
    timings = _timings(base, t0, t_condense)
    timings |= {"generate": (t_end - t_gen) * 1000, "total": (t_end - t0) * 1000}
    return dataclasses.replace(base, text=f"*{note}*\n\n{base.text}",
                               notes=(note, *base.notes), timings=timings)


def _timings(base: Answer, t0: float, t_condense: float) -> dict[str, float]:
    total = (time.perf_counter() - t0) * 1000
    return {**base.timings, "condense": (t_condense - t0) * 1000, "total": total}


def _messages(system: str, user: str) -> list[Any]:
    from llama_index.core.llms import ChatMessage

    return ([ChatMessage(role="system", content=system)] if system else []) + [
        ChatMessage(role="user", content=user)
    ]


def _serial(llm: Any) -> Any:
    """An in-process llama.cpp model is not thread-safe (the app answers two requests at a
    time): one call at a time. A server does its own queueing."""
    return _LOCAL_LOCK if type(llm).__name__ == "LlamaCPP" else contextlib.nullcontext()


def _chat(llm: Any, system: str, user: str) -> str:
    # Chat, not complete: a server applies the model's own chat template to the two roles.
    with _serial(llm):
        return str(llm.chat(_messages(system, user)).message.content or "")


def _stream_chat(llm: Any, system: str, user: str) -> Iterator[str]:
    with _serial(llm):
        for chunk in llm.stream_chat(_messages(system, user)):
            if chunk.delta:
                yield chunk.delta


def _short_error(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]
