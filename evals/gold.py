"""Gold question sets: typed records and a forgiving loader.

A gold file is JSON Lines, one question per line (see evals/gold/README or
/work/shared/gold/README.md for the format). ``load_gold`` never stops at the first bad line:
it returns every well-formed item plus one message per malformed line, so a single typo in a
70-line file costs one question, not the whole eval.

Example::

    >>> items, errors = load_gold(["evals/gold/dev.jsonl"])  # doctest: +SKIP
    >>> errors  # doctest: +SKIP
    ["dev.jsonl line 12: missing field 'question'"]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ALTERNATIVE_SEPARATOR = " | "

_REQUIRED_FIELDS = ("id", "question", "answerable", "key_facts", "evidence", "type")


@dataclass(frozen=True)
class Evidence:
    """A verbatim passage of the seed file ``doc`` (a file name in corpus/) supporting an answer."""

    doc: str
    quote: str


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answerable: bool
    key_facts: tuple[str, ...]  # each may hold " | "-separated accepted alternatives
    evidence: tuple[Evidence, ...]
    type: str
    notes: str = ""

    def fact_alternatives(self) -> list[tuple[str, ...]]:
        """``key_facts`` split into their accepted alternatives, one tuple per fact."""
        return [
            tuple(alt.strip() for alt in fact.split(ALTERNATIVE_SEPARATOR) if alt.strip())
            for fact in self.key_facts
        ]


class _Malformed(ValueError):
    pass


def _parse_item(obj: object) -> GoldItem:
    if not isinstance(obj, dict):
        raise _Malformed(f"expected a JSON object, got {type(obj).__name__}")
    for name in _REQUIRED_FIELDS:
        if name not in obj:
            raise _Malformed(f"missing field {name!r}")

    for name in ("id", "question", "type"):
        if not isinstance(obj[name], str) or not obj[name].strip():
            raise _Malformed(f"field {name!r} must be a non-empty string")
    if not isinstance(obj["answerable"], bool):
        raise _Malformed("field 'answerable' must be true or false")
    notes = obj.get("notes", "")
    if not isinstance(notes, str):
        raise _Malformed("field 'notes' must be a string")

    facts = obj["key_facts"]
    if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
        raise _Malformed("field 'key_facts' must be a list of non-empty strings")

    raw_evidence = obj["evidence"]
    if not isinstance(raw_evidence, list):
        raise _Malformed("field 'evidence' must be a list")
    evidence = []
    for i, ev in enumerate(raw_evidence):
        if (
            not isinstance(ev, dict)
            or not isinstance(ev.get("doc"), str)
            or not isinstance(ev.get("quote"), str)
        ):
            raise _Malformed(f"evidence[{i}] must be an object with string 'doc' and 'quote'")
        # An empty quote would be a substring of every passage and match anything.
        if not re.search(r"\w", ev["quote"]):
            raise _Malformed(f"evidence[{i}] has an empty quote")
        evidence.append(Evidence(doc=ev["doc"], quote=ev["quote"]))
    if obj["answerable"] and not evidence:
        # Retrieval cannot be scored without evidence, and the README promises 1-3 passages.
        raise _Malformed("answerable question has no evidence")

    return GoldItem(
        id=obj["id"],
        question=obj["question"],
        answerable=obj["answerable"],
        key_facts=tuple(facts),
        evidence=tuple(evidence),
        type=obj["type"],
        notes=notes,
    )


def load_gold(paths: str | Path | Iterable[str | Path]) -> tuple[list[GoldItem], list[str]]:
    """Load one or more JSONL gold files.

    Returns ``(items, errors)``: malformed lines are skipped and reported as
    ``"<file name> line <n>: <problem>"``; everything else is loaded. Blank lines are ignored.
    A repeated id (within or across files) is an error on the later line.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    items: list[GoldItem] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    for path in map(Path, paths):
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path.name} line {lineno}"
                try:
                    item = _parse_item(json.loads(line))
                except json.JSONDecodeError as exc:
                    errors.append(f"{where}: invalid JSON ({exc.msg})")
                    continue
                except _Malformed as exc:
                    errors.append(f"{where}: {exc}")
                    continue
                if item.id in seen:
                    errors.append(f"{where}: duplicate id {item.id!r} (first at {seen[item.id]})")
                    continue
                seen[item.id] = where
                items.append(item)
    return items, errors


def _collapse_whitespace(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def check_evidence(items: Iterable[GoldItem], corpus_dir: str | Path) -> list[str]:
    """Check each quote is a verbatim substring of its seed file once whitespace is collapsed.

    That is the promise the gold README makes; the eval's match rule is more lenient (see
    ``evals.matching``), so this check is what catches a quote that drifted from its source.
    """
    corpus_dir = Path(corpus_dir)
    texts: dict[str, str | None] = {}
    problems = []
    for item in items:
        for i, ev in enumerate(item.evidence):
            if ev.doc not in texts:
                path = corpus_dir / ev.doc
                texts[ev.doc] = (
                    _collapse_whitespace(path.read_text(encoding="utf-8"))
                    if path.is_file()
                    else None
                )
            text = texts[ev.doc]
            if text is None:
                problems.append(f"{item.id} evidence[{i}]: no file {ev.doc!r} in {corpus_dir}")
            elif _collapse_whitespace(ev.quote) not in text:
                problems.append(f"{item.id} evidence[{i}]: quote not found verbatim in {ev.doc}")
    return problems
