"""The content-word vocabulary of the corpus, ranked by how many paragraphs use each word.

A maintenance tool, not used at run time: it lists the English words that `corpus/lexicon.toml`
should translate from French, Spanish, Portuguese and Arabic, and with `--lexicon` which of them a
language's table does not reach yet.

    .venv/bin/python -m ingest.vocabulary                # top 900 words with their counts
    .venv/bin/python -m ingest.vocabulary --top 300 --lexicon corpus/lexicon.toml

Words are lowercased letter runs of three letters or more; English stop words (bm25s's longer
list, plus a few auxiliaries and URL or markup parts) and numbers are dropped;
plurals are folded to the singular when that singular also occurs in the corpus ("villages" ->
"village", "policies" -> "policy", but "process" and "news" stay).
"""

from __future__ import annotations

import argparse
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bm25s.stopwords
import Stemmer

from ingest.cleaning import normalize_chars

_WORD = re.compile(r"[a-z]+")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n\s*(?=[a-z])")  # "pov-\nerty" in hard-wrapped text
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# English stop words as bm25s ships them (its longer list; the index itself drops only the short
# one), plus words that carry no topic in a question and markup or URL parts left in the sources.
STOP_WORDS = frozenset(bm25s.stopwords.STOPWORDS_EN_PLUS) | frozenset(
    "also among could would may might must shall upon within without yet via per etc thus"
    " hence however therefore whose http https www com org gov html htm shtml pdf doi ibid"
    " see sup".split()
)
# Words ending in "s" that are not plurals of another corpus word.
_NOT_PLURALS = frozenset(
    "news means goods series species politics economics statistics headquarters arms always"
    " perhaps whereas besides towards various numerous serious previous status basis analysis"
    " crisis thesis".split()
)


@dataclass(frozen=True)
class Term:
    word: str
    paragraphs: int  # document frequency over paragraphs
    occurrences: int


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, with hyphenated line breaks joined."""
    text = _HYPHEN_BREAK.sub("", normalize_chars(text))
    return [p for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def words(text: str) -> list[str]:
    """Lowercased content words of three letters or more (numbers and stop words dropped)."""
    return [w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOP_WORDS]


def singular(word: str, known: set[str] | Counter[str]) -> str:
    """The singular of a plural when the corpus also uses that singular, else the word itself.

    >>> singular("policies", {"policy"}), singular("news", {"new"})
    ('policy', 'news')
    """
    if not word.endswith("s") or word.endswith(("ss", "us", "is")) or word in _NOT_PLURALS:
        return word
    candidates = []
    if word.endswith("ies"):
        candidates.append(word[:-3] + "y")
    if word.endswith("es"):
        candidates.append(word[:-2])
    candidates.append(word[:-1])
    for candidate in candidates:
        if len(candidate) >= 3 and candidate in known:
            return candidate
    return word


def vocabulary(texts: Iterable[str]) -> list[Term]:
    """Every content word of `texts`, most widely used first (paragraph count, then occurrences)."""
    paras = [words(p) for text in texts for p in paragraphs(text)]
    raw = Counter(w for para in paras for w in para)
    lemma = {w: singular(w, raw) for w in raw}
    occurrences: Counter[str] = Counter()
    for w, n in raw.items():
        occurrences[lemma[w]] += n
    spread = Counter(term for para in paras for term in {lemma[w] for w in para})
    ranked = sorted(spread, key=lambda t: (-spread[t], -occurrences[t], t))
    return [Term(t, spread[t], occurrences[t]) for t in ranked]


def corpus_texts(corpus_dir: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.txt"))]


def uncovered(terms: Iterable[Term], lexicon: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Per language table, the vocabulary words whose stem none of its English values has.

    Stems are the lexical index's (Snowball English), so "help" in a value reaches "helped".
    """
    stem = Stemmer.Stemmer("english").stemWord
    terms = list(terms)
    out = {}
    for lang, table in lexicon.items():
        reached = {stem(w) for value in table.values() for w in _WORD.findall(value.lower())}
        out[lang] = [t.word for t in terms if stem(t.word) not in reached]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"), help="folder of *.txt")
    parser.add_argument("--top", type=int, default=900, help="how many words to list")
    parser.add_argument(
        "--lexicon", type=Path, help="a lexicon.toml: list the top words its tables miss instead"
    )
    args = parser.parse_args(argv)
    terms = vocabulary(corpus_texts(args.corpus))[: args.top]
    if args.lexicon:
        lexicon = tomllib.loads(args.lexicon.read_text(encoding="utf-8"))
        for lang, missing in uncovered(terms, lexicon).items():
            print(f"[{lang}] {len(missing)} of {len(terms)} not reached: {' '.join(missing)}")
        return
    for rank, term in enumerate(terms, 1):
        print(f"{rank}\t{term.word}\t{term.paragraphs}\t{term.occurrences}")


if __name__ == "__main__":
    main()
