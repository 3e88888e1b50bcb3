import pytest

from kb.language import detect_language, is_english


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("What are the five batches?", "en"),
        ("Has any other country copied China's approach and seen poverty fall as a result?", "en"),
        ("Combien de personnes ont été relogées en Chine ?", "fr"),
        ("¿Cuáles fueron las tres formas principales de evaluar la pobreza?", "es"),
        ("Quantos profissionais de outros países a China ajudou a formar?", "pt"),
        ("كم كان الإيجار السنوي لكل مو؟", "ar"),
        ("", "en"),
        ("12345 ?!", "en"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang
    assert is_english(text) == (lang == "en")
