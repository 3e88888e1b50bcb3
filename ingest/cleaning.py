"""Character- and line-level cleaning of extraction artifacts (quotes, spaces, markup, markers)."""

from __future__ import annotations

import re
import unicodedata

_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\uff1a": ": ", "\uff0c": ", ", "\uff1b": "; ", "\uff08": " (", "\uff09": ") ",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ", "\u3000": " ",
    "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "", "\u00ad": "",
    "\t": " ", "\r": "", "\f": "\n",
    "\ufb01": "fi", "\ufb02": "fl", "\ufb00": "ff", "\ufb03": "ffi", "\ufb04": "ffl",
}
_CHAR_TABLE = str.maketrans(_CHAR_MAP)

_SUPERSCRIPT_DIGITS = "\u00b9\u00b2\u00b3\u2070\u2074\u2075\u2076\u2077\u2078\u2079"


def normalize_chars(text: str) -> str:
    """Curly quotes to straight, full-width punctuation to ASCII, odd spaces to plain spaces.

    Leading spaces of lines are kept: in PDF extractions they mark the start of a new page.
    """
    text = text.translate(_CHAR_TABLE)
    # "China' s" (space after an apostrophe inside a word) is an extraction artifact of 004.
    text = re.sub(r"(?<=[A-Za-z])' s\b", "'s", text)
    return text


def collapse_spaces(text: str) -> str:
    """Runs of spaces inside a line become one space; the line is stripped."""
    return re.sub(r"[ ]{2,}", " ", text).strip()


# ---- Markdown and HTML-ish markup (002 is Markdown-like) ----

_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((?:https?://|www\.)[^)\s]*\)")
_ANGLE_URL = re.compile(r"<((?:https?://|www\.)[^>\s]+)>")
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3})(?=\S)(.+?)(?<=\S)\1")
_SUP = re.compile(r"<sup>\s*([^<]{0,12}?)\s*</sup>", re.IGNORECASE)
_TAGS = re.compile(r"</?(?:sub|sup|br|span|em|strong|b|i)\b[^>]*>", re.IGNORECASE)


def strip_markup(text: str) -> str:
    """Markdown emphasis, links and inline HTML tags removed; escaped characters unescaped."""
    text = _MD_LINK.sub(r"\1", text)
    text = _ANGLE_URL.sub(r"\1", text)
    text = _SUP.sub("", text)
    text = _TAGS.sub("", text)
    for _ in range(2):
        text = _EMPHASIS.sub(r"\2", text)
    # Emphasis opened on one line and closed on another ("**Striving for ...\n... Achievement**").
    text = re.sub(r"\*{2,3}", "", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!$|~<>])", r"\1", text)
    text = text.replace("\\\\", "\\")
    # Markdown hard line break ("  " at line end) is just whitespace here.
    return text


# ---- footnote markers left in body sentences ----

# A note number glued to the end of a sentence ("nationwide.1", "century." 1) or to a word
# after a closing quote. Only small numbers directly after sentence punctuation are removed,
# so "in 2019, 94.8 percent" or "1.1 million" are never touched.
_GLUED_MARKER = re.compile(
    r"(?<=[a-z)][.!?,;])\d{1,2}(?=\s|$)|(?<=[a-z][.!?]\")\d{1,2}(?=\s|$)"
)
_SPACED_MARKER = re.compile(
    r"(?<=[.!?]\")\s\d{1,2}(?=\s+[A-Z\"]|\s*$)|(?<=[a-z][.!?])\s\d(?=\s+[A-Z\"]|\s*$)"
)
_SUPERSCRIPT_MARKER = re.compile(f"[{_SUPERSCRIPT_DIGITS}]+")


_CIRCLED_MARKER = re.compile(r"\^?[\u2460-\u2473]|\^\d{1,2}\b")


def remove_note_markers(text: str) -> str:
    text = _SUPERSCRIPT_MARKER.sub("", text)
    text = _CIRCLED_MARKER.sub("", text)
    text = _GLUED_MARKER.sub("", text)
    text = _SPACED_MARKER.sub("", text)
    return text


def fold_for_match(text: str) -> str:
    """Lowercase, accents off, every run of non-alphanumerics one space (used for comparisons)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()
