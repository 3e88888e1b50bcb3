"""Dictionary-based query translation for questions in French, Spanish, Portuguese or Arabic.

The multilingual embedder reads such questions directly; this adds the English words of the
question's policy vocabulary (from `corpus/lexicon.toml`, data anyone can extend) to the lexical
search, which otherwise matches only names and figures across languages.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path

LEXICON_FILE = "lexicon.toml"  # in the corpus directory; not a document
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_AR_SUFFIXES = ("هما", "هم", "هن", "ها", "كم", "نا", "ات", "ون", "ين", "ية", "ه", "ة", "ي", "ا")


def fold(word: str) -> str:
    """Lowercase without accents ("Pauvreté" -> "pauvrete"); Arabic letters are kept."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _variants(word: str, lang: str) -> list[str]:
    out = [word]
    if lang == "ar":
        stems = [word]
        for prefix in ("وال", "بال", "لل", "ال", "و", "ب", "ل"):
            if word.startswith(prefix) and len(word) - len(prefix) >= 2:
                stems.append(word[len(prefix) :])
        out = list(stems)
        # Attached pronouns and endings ("دخلهم" their income, "تجربتها" its experience): try
        # them off too, and a final ت back into the ة it was before the suffix.
        for stem in stems:
            for suffix in _AR_SUFFIXES:
                if stem.endswith(suffix) and len(stem) - len(suffix) >= 3:
                    base = stem[: -len(suffix)]
                    out.append(base)
                    if base.endswith("ت"):
                        out.append(base[:-1] + "ة")
    else:
        for suffix in ("es", "s", "x"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                out.append(word[: -len(suffix)])
    return out


class Lexicon:
    def __init__(self, tables: dict[str, dict[str, str]]):
        self.tables = {
            lang: {fold(k): str(v) for k, v in table.items()} for lang, table in tables.items()
        }

    @classmethod
    def load(cls, corpus_dir: Path) -> Lexicon:
        path = corpus_dir / LEXICON_FILE
        if not path.exists():
            return cls({})
        return cls(tomllib.loads(path.read_text(encoding="utf-8")))

    def translate(self, text: str, lang: str) -> str:
        """The English words for the words of `text` the lexicon knows, in order, deduplicated.

        >>> Lexicon({"fr": {"pauvreté": "poverty"}}).translate("La pauvreté rurale", "fr")
        'poverty'
        """
        table = self.tables.get(lang, {})
        out: list[str] = []
        for word in _WORD.findall(text):
            for variant in _variants(fold(word), lang):
                english = table.get(variant)
                if english:
                    if english not in out:
                        out.append(english)
                    break
        return " ".join(out)
