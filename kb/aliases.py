"""The alias table: names that different documents give to one measure, used to expand queries.

Two sources, both data: the curated groups in `corpus/aliases.toml`, and the glossary entries
found at ingest (a glossary chunk's term, plus the quoted names its definition opens with).
Groups that share a name are merged. Matching works on stemmed, stopword-free token sequences,
so "five batch", "Five Batches" and "the five batches" all match.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.lexical import tokenize

ALIASES_FILE = "aliases.toml"  # in the corpus directory; not a document
# A definition that names another form of its term: 'also known as "X"', 'or "X"', 'short for'.
_ALSO_NAMED = re.compile(
    r'(?:also (?:known as|called|referred to as)|short for|abbreviated as|or)\s+"([^"]{3,80})"',
    re.IGNORECASE,
)


def phrase_key(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


@dataclass(frozen=True)
class AliasGroup:
    concept: str
    names: tuple[str, ...]


class AliasTable:
    def __init__(self, groups: Iterable[AliasGroup]):
        self.groups = _merge(list(groups))
        self._by_first: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for gi, group in enumerate(self.groups):
            for name in group.names:
                key = phrase_key(name)
                if key:
                    self._by_first.setdefault(key[0], []).append((key, gi))

    @classmethod
    def load(cls, corpus_dir: Path, glossary: Iterable[tuple[str, str]] = ()) -> AliasTable:
        """Curated groups from `corpus_dir/aliases.toml` plus (term, definition) glossary pairs.

    A glossary term joins the curated group that shares one of its names, so the term a
    document's glossary uses is searched for whenever any other name is asked about.
    """
        groups: list[AliasGroup] = []
        path = corpus_dir / ALIASES_FILE
        if path.exists():
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            for g in data.get("group", []):
                names = tuple(str(n) for n in g.get("names", []) if str(n).strip())
                if names:
                    groups.append(AliasGroup(str(g.get("concept") or names[0]), names))
        for term, definition in glossary:
            names = [term]
            names += [q for q in _ALSO_NAMED.findall(definition[:400]) if phrase_key(q)]
            groups.append(AliasGroup(term, tuple(dict.fromkeys(names))))
        return cls(groups)

    def matches(self, text: str) -> list[AliasGroup]:
        """Groups one of whose names occurs in `text` (as a token sequence)."""
        tokens = phrase_key(text)
        found: dict[int, None] = {}
        for i, tok in enumerate(tokens):
            for key, gi in self._by_first.get(tok, []):
                if tokens[i : i + len(key)] == key:
                    found[gi] = None
        return [self.groups[gi] for gi in found]

    def expand(self, text: str) -> list[str]:
        """The other names of every group the text mentions (names already present excluded)."""
        tokens = " ".join(phrase_key(text))
        out: list[str] = []
        for group in self.matches(text):
            for name in group.names:
                if " ".join(phrase_key(name)) not in tokens and name not in out:
                    out.append(name)
        return out


def _merge(groups: list[AliasGroup]) -> list[AliasGroup]:
    """Union groups that share a name (same key), keeping first-seen order of names."""
    merged: list[tuple[str, list[str], set[tuple[str, ...]]]] = []
    for group in groups:
        keys = {phrase_key(n) for n in group.names} - {()}
        hits = [m for m in merged if m[2] & keys]
        if not hits:
            merged.append((group.concept, list(group.names), set(keys)))
            continue
        target = hits[0]
        for other in hits[1:]:
            target[1].extend(other[1])
            target[2].update(other[2])
            merged.remove(other)
        target[1].extend(group.names)
        target[2].update(keys)
    return [
        AliasGroup(concept, tuple(dict.fromkeys(names))) for concept, names, _ in merged
    ]


class DocumentNames:
    """How questions name documents: "the white paper", "Hou Junqi's report", "Tricontinental".

    From `[documents."<file>"] names = [...]` in aliases.toml, plus each document's publisher
    (up to the first comma, colon or parenthesis). Kinds ("study", "report") are too common in
    questions to name a document on their own.
    """

    def __init__(self, names: dict[str, list[str]]):
        self._keys = {
            doc_id: {k for k in (phrase_key(n) for n in doc_names) if k}
            for doc_id, doc_names in names.items()
        }
        # The raw-text form of every name, longest first, to cut names out of a question:
        # words in order, any punctuation between them, an optional possessive.
        patterns = sorted({n for ns in names.values() for n in ns}, key=len, reverse=True)
        self._strip = [
            re.compile(
                r"\b" + r"[\W_]+".join(re.escape(w) for w in re.findall(r"\w+", n))
                + r"(?:'s|\u2019s)?\b", re.IGNORECASE,
            )
            for n in patterns if re.findall(r"\w+", n)
        ]

    @classmethod
    def load(cls, corpus_dir: Path, documents: Iterable[Any]) -> DocumentNames:
        documents = list(documents)
        curated: dict[str, Any] = {}
        path = corpus_dir / ALIASES_FILE
        if path.exists():
            curated = tomllib.loads(path.read_text(encoding="utf-8")).get("documents", {})
        names: dict[str, list[str]] = {}
        for d in documents:
            own = [str(n) for n in curated.get(d.source, {}).get("names", [])]
            head = re.split(r"[,:(]", d.publisher, maxsplit=1)[0].strip()
            if head:
                own.append(re.sub(r"^the\s+", "", head, flags=re.IGNORECASE))
            names[d.doc_id] = own
        return cls(names)

    def strip(self, text: str) -> str:
        """`text` without the document names it contains ("According to Hou Junqi's report,
        what ..." -> "According to report, what ..."), or unchanged if nothing else is left."""
        out = text
        for pattern in self._strip:
            out = pattern.sub(" ", out)
        out = " ".join(out.split())
        return out if len(out.split()) >= 3 else text

    def mentioned(self, text: str) -> set[str]:
        """doc ids whose names occur in `text` (as stemmed token sequences)."""
        tokens = phrase_key(text)
        found = set()
        for doc_id, keys in self._keys.items():
            for key in keys:
                n = len(key)
                if any(tokens[i : i + n] == key for i in range(len(tokens) - n + 1)):
                    found.add(doc_id)
                    break
        return found
