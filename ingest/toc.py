"""Tables of contents: find them (to drop them) and read them (heading titles, order, pages).

The TOC is the most reliable statement of a document's structure that survives extraction:
it gives the heading hierarchy (002's headings are out of order and wrongly levelled in the
file, its TOC is right) and a printed page for each heading (000 has no printed page numbers
after p. 69, its TOC says "Glossaries ... 85").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.cleaning import fold_for_match, strip_markup

_TOC_TITLE = re.compile(r"^(table of )?contents$", re.IGNORECASE)
_LEADERS = re.compile(r"(?:\s*[.…·]\s*){2,}|…")
_TABLE_RULE = re.compile(r"^[-|:\s]+$")
_TRAILING_PAGE = re.compile(r"^(.*?\D)\s*(\d{1,4})\s*$")


@dataclass(frozen=True)
class TocEntry:
    title: str
    page: int | None
    parents: tuple[str, ...]
    key: str  # fold_for_match(title), for matching headings in the body


@dataclass(frozen=True)
class Toc:
    start: int  # line index of the "Contents" title
    end: int  # first line index after the TOC
    entries: tuple[TocEntry, ...]

    def find(self, text: str) -> TocEntry | None:
        key = fold_for_match(text)
        if not key:
            return None
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None


def _bare(line: str) -> str:
    return strip_markup(line.strip().lstrip("#").strip()).strip("* ").strip()


def title_level(title: str) -> tuple[str, int]:
    """Heading style and its depth from the title's numbering alone (shared with the body)."""
    if re.match(r"^(chapter|part)\s+[\w-]+\b", title, re.IGNORECASE):
        return "chapter", 1
    if re.match(r"^[IVXL]+\.\s", title):
        return "roman", 1
    if re.match(r"^(appendix|appendixes|appendices|annex)\b", title, re.IGNORECASE):
        return "appendix", 1
    if re.match(
        r"^(preface|foreword|introduction|conclusions?|epilogue|abstract|glossary|glossaries|"
        r"references?|bibliography|endnotes|notes|acknowledge?ments|editor's note)\b",
        title,
        re.IGNORECASE,
    ):
        return "named", 1
    match = re.match(r"^(\d{1,2}(?:\.\d{1,2})*)[.:]?\s", title)
    if match:
        return "numbered", match.group(1).count(".") + 1
    if re.match(r"^[ivx]+\.\s", title):
        return "lroman", 1
    return "plain", 1


def find_toc(lines: list[str]) -> Toc | None:
    """The table of contents starting at a "Contents" line, with its entries; None if absent."""
    start = next((i for i, line in enumerate(lines[:400]) if _TOC_TITLE.match(_bare(line))), None)
    if start is None:
        return None
    raw_entries: list[list] = []  # [title, page]
    i = start + 1
    end = start + 1
    seen_keys: set[str] = set()
    while i < len(lines) and i < start + 200:
        raw = lines[i]
        line = _bare(raw)
        if not line or _TABLE_RULE.match(line):
            i += 1
            continue
        has_leader = bool(_LEADERS.search(line))
        if re.fullmatch(r"\d{1,4}", line):
            if raw_entries and raw_entries[-1][1] is None:
                raw_entries[-1][1] = int(line)
            i += 1
            end = i
            continue
        if not has_leader and fold_for_match(line) in seen_keys:
            break  # the first body heading repeats a TOC entry: the TOC is over
        if len(line) > 200 or (not has_leader and len(line) > 150 and line.endswith(".")):
            break
        if line.startswith("<sup>") or re.search(r"[.!?]\s+[A-Z][a-z]+ [a-z]+ [a-z]+", line):
            break  # a sentence of body text
        text = _LEADERS.sub(" ", line).strip()
        page = None
        match = _TRAILING_PAGE.match(text)
        if match and (has_leader or re.search(r"[A-Za-z)\"]\d{1,3}$", text)):
            text, page = match.group(1).strip(), int(match.group(2))
        text = text.strip(" .…·")
        if raw_entries and _continues(raw_entries[-1][0], raw, text):
            prev = raw_entries[-1][0]
            glue = "" if re.search(r"\s[A-Z]$", prev) else " "
            raw_entries[-1][0] = f"{prev}{glue}{text}".strip()
            if page is not None:
                raw_entries[-1][1] = page
        elif text:
            raw_entries.append([text, page])
        seen_keys = {fold_for_match(t) for t, _ in raw_entries}
        i += 1
        end = i
    if not raw_entries:
        return None
    return Toc(start=start, end=end, entries=tuple(_with_parents(raw_entries)))


def _continues(prev: str, raw: str, text: str) -> bool:
    """Is this TOC line the rest of the previous entry ("2.1 W" + "ho Are the Poor?")?"""
    if re.search(r"(^|\s)[A-Z]$", prev):
        return True  # a title cut after its first letter
    if prev.endswith(":") and title_level(text)[0] == "plain":
        return True  # "Chapter One:" + "The Five-Year Transition Period"
    indented = raw.startswith("  ") or raw.startswith("\t")
    return indented and title_level(text)[0] == "plain" and bool(prev) and not prev[-1].isdigit()


def _with_parents(raw_entries: list[list]) -> list[TocEntry]:
    entries: list[TocEntry] = []
    top: str | None = None  # last chapter/part/roman/appendix entry
    top_style = ""
    numbered: dict[int, str] = {}
    for title, page in raw_entries:
        title = re.sub(r"\s+", " ", title).strip()
        style, depth = title_level(title)
        if style in ("chapter", "roman", "appendix"):
            parents: tuple[str, ...] = ()
            top, top_style = title, style
            numbered = {}
        elif style == "named":
            parents = ()
            top, top_style = None, ""
            numbered = {}
        elif style == "numbered":
            chain = tuple(numbered[d] for d in sorted(numbered) if d < depth)
            parents = ((top,) if top and top_style in ("chapter", "roman", "appendix") else ())
            parents += chain
            numbered = {d: t for d, t in numbered.items() if d < depth}
            numbered[depth] = title
        else:
            parents = (top,) if top else ()
        entries.append(TocEntry(title, page, parents, fold_for_match(title)))
    return entries
