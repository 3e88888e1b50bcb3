"""Follow-up questions rewritten into standalone queries before retrieval.

Without a model: a question that leans on the previous one ("and how many were relocated?",
"what about education?", "when was it handed over?") keeps its own words and carries the topic
words of the previous standalone query that it does not already say. Chaining the *standalone*
queries lets a third turn still know the first turn's topic.

    >>> condense("What about education?", ["How many people were relocated in Guizhou?"])
    'What about education? (people relocated Guizhou)'

A generative mode can swap in a condense prompt (prompts/condense.txt) behind the same function.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kb.lexical import tokenize
from kb.question import _QUESTION_STEMS, content_terms

_LEADING = re.compile(
    r"^\s*(and|but|also|so|then|ok(ay)?|what about|how about|and what about|what of|and how "
    r"about|same for|et|y|e|و)\b", re.IGNORECASE,
)
_PRONOUN = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|there|he|she|his|her|the same)\b",
    re.IGNORECASE,
)
_TOPIC_WORDS = 8


def previous_query(turn: Any) -> str:
    """The query of one history turn: a string, a dict with "query"/"question", or an Answer."""
    if isinstance(turn, str):
        return turn
    if isinstance(turn, dict):
        return str(turn.get("query") or turn.get("question") or "")
    return str(getattr(turn, "query", "") or getattr(turn, "question", "") or "")


def is_followup(question: str) -> bool:
    terms = content_terms(question)
    if _LEADING.match(question):
        return True
    if len(terms) <= 1:
        return True
    return bool(_PRONOUN.search(question)) and len(terms) <= 3


def condense(question: str, history: Sequence[Any] | None) -> str:
    """A standalone query for `question` given earlier turns (oldest first)."""
    question = " ".join(question.split())
    if not history:
        return question
    previous = ""
    for turn in reversed(history):
        previous = previous_query(turn)
        if previous.strip():
            break
    if not previous or not is_followup(question):
        return question
    own = set(tokenize(question))
    topic: list[str] = []
    for word in re.findall(r"[\w'’\-]+", previous.split(" (", 1)[0] + " " + _carried(previous)):
        stems = tokenize(word)
        if not stems or stems[0] in own or stems[0] in _QUESTION_STEMS:
            continue
        if word.lower() in {w.lower() for w in topic}:
            continue
        topic.append(word)
        if len(topic) == _TOPIC_WORDS:  # enough; a 100 KB previous turn must not cost more
            break
    if not topic:
        return question
    return f"{question} ({' '.join(topic)})"


def _carried(query: str) -> str:
    """The topic words a standalone query already carried in parentheses."""
    m = re.search(r"\(([^()]*)\)\s*$", query)
    return m.group(1) if m else ""
