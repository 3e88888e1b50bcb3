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

from kb.lexical import tokenize

ALIASES_FILE = "aliases.toml"  # in the corpus directory; not a document
_QUOTED = re.compile(r'"([^"]{3,80})"')


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
        """Curated groups from `corpus_dir/aliases.toml` plus (term, definition) glossary pairs."""
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
            head = definition[:200]
            names += [q for q in _QUOTED.findall(head) if phrase_key(q) and len(q.split()) <= 8]
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
