"""A small, dependency-free guess of a question's language: is it English or not?

Only the decision "English or not" matters for retrieval (which embedder to trust), so a
stopword vote over the five languages our users write in is enough; a script check catches Arabic.
"""

from __future__ import annotations

import re

_STOPWORDS = {
    "en": "the of and to in is are what how which who when does did was were for on with by "
    "why".split(),
    "fr": "le la les des du de et est sont quel quelle quels quelles comment pourquoi une un au "
    "aux dans pour par que qui ont été".split(),
    "es": "el la los las del de y es son qué cuál cuáles cómo por para una un en que se fue "
    "han".split(),
    "pt": "o os do da dos das é não são qual quais como por para uma um em que foi foram quantos "
    "quantas outros outras pelo pela nos nas também".split(),
}
_MARKS = {"fr": ("è", "ê", "à ", "œ", "ù", "î"), "es": ("ñ", "¿", "¡"), "pt": ("ã", "õ", "ções")}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str) -> str:
    """'ar', 'en', 'fr', 'es', 'pt' or 'en' when unsure."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    arabic = sum(1 for c in letters if "\u0600" <= c <= "\u06ff" or "\u0750" <= c <= "\u077f")
    if arabic / len(letters) > 0.3:
        return "ar"
    words = [w.lower() for w in _WORD.findall(text)]
    votes = {lang: sum(w in set(sw) for w in words) for lang, sw in _STOPWORDS.items()}
    for lang, marks in _MARKS.items():  # letters only one of the three languages uses
        votes[lang] += sum(text.count(m) for m in marks)
    best = max(votes, key=lambda lang: votes[lang])
    return best if votes[best] > votes["en"] else "en"


def is_english(text: str) -> bool:
    return detect_language(text) == "en"
