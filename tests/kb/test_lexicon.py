"""The bilingual lexicon (corpus/lexicon.toml) as data: its keys, its values, and what it adds."""

from __future__ import annotations

import re
import tomllib

import bm25s.stopwords
import pytest

from kb.lexical import tokenize
from kb.lexicon import Lexicon, _variants, fold
from tests.conftest import CORPUS

LANGS = ("fr", "es", "pt", "ar")
# Arabic function words (bm25s ships no Arabic list); each must reach no key, even with a prefix.
ARABIC_FUNCTION_WORDS = (
    "في من إلى على عن مع هذا هذه ذلك تلك التي الذي الذين ما ماذا كيف هل لماذا متى أين كان كانت"
    " يكون أو ثم قد لقد لم لن إن أن كل بعض غير حول ضمن حسب عند بين قبل بعد خلال أي هو هي هم"
    " نحن لا إذا حتى أيضا فقط كما لكن ليس"
).split()
FUNCTION_WORDS = {
    "fr": set(bm25s.stopwords.STOPWORDS_FRENCH) | {"comment", "quel", "quelle", "quels", "plus"},
    "es": set(bm25s.stopwords.STOPWORDS_SPANISH) | {"cuál", "cuáles", "cómo", "qué"},
    "pt": set(bm25s.stopwords.STOPWORDS_PORTUGUESE) | {"quais", "quanto", "qual", "como"},
    "ar": set(ARABIC_FUNCTION_WORDS),
}


@pytest.fixture(scope="module")
def tables() -> dict[str, dict[str, str]]:
    return tomllib.loads((CORPUS / "lexicon.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(CORPUS)


def test_every_language_has_a_corpus_sized_table(tables) -> None:
    assert set(LANGS) <= set(tables)
    for lang in LANGS:
        assert len(tables[lang]) >= 2000, lang


def test_keys_are_single_folded_words(tables) -> None:
    for lang in LANGS:
        folded = [fold(k) for k in tables[lang]]
        assert len(set(folded)) == len(folded), f"{lang}: two keys fold to the same word"
        for key in tables[lang]:
            assert re.fullmatch(r"[^\W\d_]+", key), f"{lang}: {key!r} is not one word"
            if lang != "ar":
                assert key == fold(key), f"{lang}: {key!r} is not lowercase without accents"


@pytest.mark.parametrize("lang", LANGS)
def test_no_function_word_reaches_a_key(lexicon, lang) -> None:
    table = lexicon.tables[lang]
    hits = {
        word: variant
        for word in FUNCTION_WORDS[lang]
        for variant in _variants(fold(word), lang)
        if variant in table
    }
    assert hits == {}


def test_every_english_value_is_a_word_of_the_corpus(tables) -> None:
    """A value the passages never contain (after the index's own stemming) could never match."""
    corpus_terms = set()
    for path in CORPUS.glob("*.txt"):
        corpus_terms |= set(tokenize(path.read_text(encoding="utf-8")))
    missing = {
        (lang, key, term)
        for lang in LANGS
        for key, value in tables[lang].items()
        for term in tokenize(value)
        if term not in corpus_terms
    }
    assert missing == set()


@pytest.mark.parametrize(
    ("lang", "question", "expected"),
    [
        (
            "pt",
            "Quantos profissionais de outros países a China ajudou a formar?",
            {"professional", "countries", "help", "train"},
        ),
        (
            "fr",
            "Combien de personnes âgées ont été relogées près des villes ?",
            {"elderly", "relocation", "city"},
        ),
        ("fr", "Les travaux des coopératives nationaux", {"work", "cooperative", "national"}),
        (
            "es",
            "¿Cómo capacitó el gobierno a los trabajadores con discapacidad?",
            {"train", "government", "worker", "disabled"},
        ),
        (
            "es",
            "¿Qué precio tenía el té de las mujeres en el mercado?",
            {"price", "women", "market"},
        ),
        (
            "pt",
            "As regiões receberam milhões de yuans para a energia solar",
            {"region", "receive", "million", "yuan", "solar"},
        ),
        ("ar", "كم كان الإيجار السنوي لكل مو؟", {"rent", "annual", "mu"}),
        (
            "ar",
            "كيف حصل المسنون والمعاقون على التأمين الطبي؟",
            {"receive", "elderly", "disabled", "insurance", "medical"},
        ),
    ],
)
def test_translate_finds_the_policy_words(lexicon, lang, question, expected) -> None:
    words = set(lexicon.translate(question, lang).split())
    assert expected <= words, expected - words


@pytest.mark.parametrize(
    ("lang", "question"),
    [
        ("fr", "Qu'est-ce que c'est, et pour qui ?"),
        ("es", "¿Qué es este, y para quién fue?"),
        ("pt", "O que é isso e para quem foi?"),
        ("ar", "ما هذا ومن هو؟"),
    ],
)
def test_function_words_add_nothing(lexicon, lang, question) -> None:
    assert lexicon.translate(question, lang) == ""


def test_arabic_attached_pronouns_and_taa_marbuta_are_tried_off() -> None:
    """"دخلهم" (their income) and "تجربتها" (its experience) reach the table's "دخل" and "تجربة"."""
    table = Lexicon({"ar": {"دخل": "income", "تجربة": "experience"}})
    assert table.translate("ما دخلهم وما تجربتها؟", "ar") == "income experience"
    assert table.translate("ما دخلهم وما تجربتها؟", "fr") == ""
