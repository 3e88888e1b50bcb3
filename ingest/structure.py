"""From extracted lines to cleaned text and typed blocks: sections, pages, notes, glossary, cases.

The walk over the lines is one pass with a little state (current section, open paragraph,
pending notes). Each decision is made by a small named predicate so that it can be read and
tested on its own; the seeds in corpus/ show the artifacts these predicates are for.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass, field

from ingest.cleaning import (
    collapse_spaces,
    remove_note_markers,
    strip_markup,
)
from ingest.pages import assign_pages, find_page_markers
from ingest.records import Block
from ingest.toc import Toc, find_toc, title_level


@dataclass
class SourceLine:
    text: str  # characters normalised, leading spaces kept
    page: int | None = None  # PDF page (1-based) or printed page, filled in later
    page_start: bool = False  # first line of a PDF page


@dataclass
class Structured:
    text: str
    blocks: list[Block]
    pages: int
    title: str | None  # first heading, for documents without a title in the manifest
    warnings: list[str] = field(default_factory=list)
    page_marks: list[tuple[int, int | None]] = field(default_factory=list)  # (offset, page)

    def page_at(self, pos: int) -> int | None:
        k = bisect.bisect_right([m[0] for m in self.page_marks], pos) - 1
        return self.page_marks[k][1] if k >= 0 else None


# ---------------------------------------------------------------- line predicates

_TERMINAL = re.compile(r"[.!?:;][\"')\]]*$")
_LEADER_LINE = re.compile(r"(?:[.…·]\s*){4,}\s*\d*\s*$|…\s*…")
_SUP_NOTE = re.compile(r"^\s*<sup>\s*(\d{1,3})\s*</sup>\s*(.*)$", re.IGNORECASE)
_SUPERSCRIPT_NOTE = re.compile(r"^\s*([\u00b9\u00b2\u00b3\u2070\u2074-\u2079]+)\s*(\S.*)$")
_CIRCLED_NOTE = re.compile(r"^\s*\^?([\u2460-\u2473])\s*(\S.*)$")  # 003: "① Xinhua, ..."
_NUMBERED_NOTE = re.compile(r"^(\d{1,2})\s+([A-Z\"].*)$")
_CITATION_END = re.compile(
    r"((19|20)\d\d\)?|pp?\.\s?[\d-]+|\.html?|\.shtml|/)\.?\s*$|^https?://|^(html|shtml)\b"
)
_CITATION_HINT = re.compile(
    r"\((19|20)\d\d\)|https?://|press conference|Excerpt from|Publishing House|Journal|"
    r"Xinhua|People's Daily|Press\b|Speech at|Remarks at|Report\b|\bpp?\. ?\d|"
    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, (19|20)\d\d"
)
_LIST_ITEM = re.compile(r"^(?:[-•*]\s|\(\d{1,2}\)\s|\d{1,2}\)\s)")
# Labelled front-matter paragraphs of papers and reports never continue the line before.
_LABELLED = re.compile(r"^(?:Abstract|Key ?words|Summary|Keywords|Foreword)\s*[:：]", re.IGNORECASE)
_GLOSSARY_ENTRY = re.compile(r"^(\"?[A-Z0-9][^:.!?]{1,70}?)\s*:\s*(\S.*)$")
_BOX = re.compile(r"^Box\s+\d{1,3}\b\s*[:.]?\s*\S")
_CASE_SECTION = re.compile(r"\bcase\b|\bcase stud|\bcases\b", re.IGNORECASE)
_GLOSSARY_SECTION = re.compile(r"\bglossar(y|ies)\b", re.IGNORECASE)
_MAX_NOTE_NUMBER = 20
_REFERENCE_SECTION = re.compile(r"^(references?|bibliography|endnotes|notes)\b", re.IGNORECASE)
# A stray reference line: a source with a date and a URL, no prose around it (002's endnotes
# are scattered; some of their continuation lines stand alone between body paragraphs).
_ORPHAN_REFERENCE = re.compile(
    r"\b\d{1,2} (January|February|March|April|May|June|July|August|September|October|"
    r"November|December) (19|20)\d\d, <?https?://\S+>?\.?$"
)
_ENTRY_START = re.compile(r"^(Record of Visit|File [IVX\d]+:)")
_ANCHOR_WORDS = 6  # words before an inline note that name what it explains
_BRACKET_NOTE = re.compile(r"(?<=\S)\[([^\[\]]{40,})\]")


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_title_case(words: list[str]) -> bool:
    long_words = [w.strip("\"'()") for w in words if len(w.strip("\"'()")) > 3]
    long_words = [w for w in long_words if not w[:1].isdigit()]
    if not long_words:
        return False
    capitalised = sum(1 for w in long_words if w[:1].isupper())
    return capitalised / len(long_words) >= 0.75


def _looks_like_sentence_start(line: str) -> bool:
    s = line.strip()
    return bool(s) and (s[0].isupper() or s[0] in "\"'(" or s[0].isdigit())


# ---------------------------------------------------------------- headings


@dataclass(frozen=True)
class Heading:
    title: str
    style: str
    level: int
    consumed: int  # extra source lines the heading spans
    toc_parents: tuple[str, ...] | None = None  # set when the TOC says where it belongs
    toc_page: int | None = None


class HeadingFinder:
    def __init__(self, toc: Toc | None, markdown: bool):
        self.toc = toc
        self.markdown = markdown
        # With a TOC listing numbered headings, numbered lines must match it ("1. Teaching time"
        # inside an appendix is a list item, not chapter 1).
        self.toc_numbered_depths = set()
        if toc:
            for e in toc.entries:
                style, depth = title_level(e.title)
                if style == "numbered":
                    self.toc_numbered_depths.add(depth)

    def match(self, lines: list[SourceLine], i: int, prev_ends_sentence: bool) -> Heading | None:
        raw = lines[i].text
        line = collapse_spaces(raw)
        if not line or len(line) > 220:
            return None
        md = re.match(r"^(#{1,6})\s+(.*)$", line)
        if md:
            title = collapse_spaces(strip_markup(md.group(2)).strip("*_ "))
            if not title:
                return None
            return self._with_toc(Heading(title, "md", len(md.group(1)), 0), title)
        bare = collapse_spaces(strip_markup(line))
        # A TOC entry split over two or three lines in the body ("1. Chinese Poverty Alleviation"
        # + "Studies Takes Shape").
        if self.toc:
            joined, used = bare, 0
            for extra in range(0, 3):
                entry = self.toc.find(joined)
                if entry and (extra == 0 or not re.search(r"[.!?;][\"')\]]*$", bare)):
                    style, depth = title_level(entry.title)
                    return Heading(
                        entry.title, style, depth, used, entry.parents, entry.page
                    )
                j = self._next_nonblank(lines, i + used + 1, limit=2)
                if j is None or len(joined) > 160:
                    break
                used = j - i
                joined = f"{joined} {collapse_spaces(lines[j].text)}"
        if _TERMINAL.search(bare) and not bare.endswith(":") and not bare.endswith("?"):
            return None
        if re.search(r"[a-z]\.\s+[A-Z]", re.sub(r"^[ivxIVX\d.]+\.\s", "", bare)):
            return None  # contains a sentence break: a paragraph, not a heading
        style, depth = title_level(bare)
        words = bare.split()
        if style == "chapter" and len(words) <= 30:
            if bare.endswith(":") and len(words) <= 3:
                j = self._next_nonblank(lines, i + 1, limit=2)
                if j is not None:
                    rest = collapse_spaces(strip_markup(lines[j].text))
                    if len(rest.split()) <= 30 and not _TERMINAL.search(rest):
                        return Heading(f"{bare} {rest}", style, 1, j - i)
            return Heading(bare.rstrip(":"), style, 1, 0)
        if style in ("roman", "lroman") and len(words) <= 30 and bare[-1] not in ",;":
            return Heading(bare, style, 1, 0)
        if style in ("appendix", "named") and len(words) <= 14:
            return Heading(bare.rstrip(":"), style, 1, 0)
        if style == "numbered" and len(words) <= 35 and not bare.endswith(","):
            if depth in self.toc_numbered_depths:
                return None  # numbered like a TOC entry but not in the TOC
            head = re.sub(r"^\d{1,2}(?:\.\d{1,2})*[.:]?\s+", "", bare)
            if head[:1].isupper() or head[:1] in "\"'":
                return Heading(bare, style, depth, 0)
            return None
        if _BOX.match(bare) and len(words) <= 25:
            return Heading(bare, "box", 9, 0)
        if not self.markdown and prev_ends_sentence and self._minor(lines, i, bare, words):
            # A title wrapped onto a second short line ("... Better for Poverty" + "Reduction").
            nxt = collapse_spaces(strip_markup(lines[i + 1].text)) if i + 1 < len(lines) else ""
            after = lines[i + 2].text.strip() if i + 2 < len(lines) else ""
            if nxt and not after and len(nxt.split()) <= 4 and not _TERMINAL.search(nxt):
                if nxt[:1].isupper() and _is_title_case(words + nxt.split()):
                    return Heading(f"{bare} {nxt}", "minor", 8, 1)
            return Heading(bare, "minor", 8, 0)
        return None

    def _minor(self, lines: list[SourceLine], i: int, bare: str, words: list[str]) -> bool:
        """A short Title Case line between sentences: a run-in sub-heading ("Historical Logic")."""
        if not 2 <= len(words) <= 12 or re.search(r"[,:;.©@\d]", bare):
            return False
        if not (bare[0].isupper() or bare[0] == '"') or not _is_title_case(words):
            return False
        j = self._next_nonblank(lines, i + 1, limit=3)
        return j is not None and _looks_like_sentence_start(lines[j].text)

    def _with_toc(self, heading: Heading, title: str) -> Heading:
        if self.toc:
            entry = self.toc.find(title)
            if entry:
                return Heading(
                    heading.title, heading.style, heading.level, 0, entry.parents, entry.page
                )
        return heading

    @staticmethod
    def _next_nonblank(lines: list[SourceLine], j: int, limit: int) -> int | None:
        skipped = 0
        while j < len(lines):
            if not _is_blank(lines[j].text):
                return j
            skipped += 1
            if skipped > limit:
                return None
            j += 1
        return None


# ---------------------------------------------------------------- footnote regions


def find_note_regions(
    lines: list[SourceLine], skip: set[int], markers: dict[int, int], is_heading
) -> dict[int, int | None]:
    """Lines that are page-foot notes in extracted text -> note number where the line starts one.

    Value None for a continuation line, -1 for a note without a known number, n for note n.
    A region starts at a standalone small number that is not a page number, at "2 Excerpt
    from ...", at a superscript digit, or at citation-looking lines just before those; it ends
    where the body resumes: a line starting with one space (the next page's first line in
    these extractions), a heading, or a sentence after a blank line.
    """
    notes: dict[int, int | None] = {}
    explicit: set[int] = set()  # lines that open a note with its own number ("2 The fish ...")
    n = len(lines)

    def standalone_number(i: int) -> int | None:
        m = re.fullmatch(r"(\d{1,2})\s*", lines[i].text)  # " 5" (indented) is a figure label
        if m and int(m.group(1)) <= _MAX_NOTE_NUMBER and i not in markers and i not in skip:
            return int(m.group(1))
        return None

    def starts_note(i: int) -> bool:
        s = lines[i].text
        if _SUPERSCRIPT_NOTE.match(s):
            return True
        m = _NUMBERED_NOTE.match(s.strip())
        if not m or s.startswith(" "):
            return False
        # "2 Excerpt from ..." or "2 The fish scale atlases ..." right after a reference.
        before = " ".join(lines[j].text for j in range(max(0, i - 3), i))
        return bool(_CITATION_HINT.search(s)) or bool(re.search(r"\((19|20)\d\d\)\.", before))

    i = 0
    while i < n:
        if i in skip or i in markers:
            i += 1
            continue
        number = standalone_number(i)
        if number is None and not starts_note(i):
            i += 1
            continue
        # Citation lines just before the region whose number was lost in extraction.
        back = _citation_lines_before(lines, i, skip, markers, notes)
        for b in back:
            notes[b] = -1 if b == back[0] else None
        pending_numbers: list[int] = []
        texts = 0
        prev_line_ended = True
        saw_blank = False
        j = i
        while j < n:
            s = lines[j].text
            if j in markers or j in skip:
                j += 1
                continue
            if _is_blank(s):
                saw_blank = True
                j += 1
                continue
            if j > i and (s.startswith(" ") and not s.startswith("  ")) and not starts_note(j):
                break  # the next page's body starts here
            if j > i and is_heading(j):
                break
            num = standalone_number(j)
            if num is not None:
                pending_numbers.append(num)
                notes[j] = None
                j += 1
                saw_blank = False
                continue
            if starts_note(j):
                explicit.add(j)
                m = _SUPERSCRIPT_NOTE.match(s) or _NUMBERED_NOTE.match(s.strip())
                number = _note_number(m.group(1)) if m else None
                notes[j] = number if number is not None else -1
                texts += 1
                if number in pending_numbers:
                    pending_numbers.remove(number)
            elif saw_blank and texts >= max(1, len(pending_numbers)) and prev_line_ended:
                break  # a sentence after the notes: body text again
            elif prev_line_ended and (pending_numbers or texts == 0):
                notes[j] = pending_numbers.pop(0) if pending_numbers else -1
                texts += 1
            else:
                notes[j] = None  # continuation of the current note
            prev_line_ended = bool(_TERMINAL.search(s.strip())) or bool(
                _CITATION_END.search(s.strip())
            )
            saw_blank = False
            j += 1
        i = max(j, i + 1)
    _drop_implausible_notes(lines, notes, explicit)
    return notes


def _drop_implausible_notes(
    lines: list[SourceLine], notes: dict[int, int | None], explicit: set[int]
) -> None:
    """Body text caught in a region (diagram labels look like note numbers) goes back to body.

    A page-foot note is a reference or a short remark: a long one without any reference-like
    text is body text that followed a row of figure labels.
    """
    starts = sorted(j for j, v in notes.items() if v is not None)
    ordered = sorted(notes)
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else None
        members = [j for j in ordered if j >= start and (end is None or j < end)]
        members = [j for j in members if j == start or notes[j] is None]
        text = " ".join(lines[j].text for j in members)
        words = len(text.split())
        if start in explicit and words <= 150:
            continue  # "¹ This report ..." or "2 The fish scale ...": a note by its own number
        if words > 90 or (words > 45 and not _CITATION_HINT.search(text)):
            for j in members:
                if not re.fullmatch(r"\s*\d{1,2}\s*", lines[j].text):
                    del notes[j]


def _note_number(mark: str) -> int | None:
    try:
        return int("".join(str(unicodedata.digit(ch)) for ch in mark))
    except (TypeError, ValueError):
        return None


def _citation_lines_before(
    lines: list[SourceLine], i: int, skip: set[int], markers: dict[int, int], notes: dict
) -> list[int]:
    """Up to 3 lines before a note region that read as a citation ending in a date or URL."""
    prev = [j for j in range(max(0, i - 4), i) if not _is_blank(lines[j].text)]
    prev = [j for j in prev if j not in skip and j not in markers and j not in notes]
    if not prev:
        return []
    last = lines[prev[-1]].text.strip()
    if not _CITATION_END.search(last) and not _TERMINAL.search(last):
        return []
    if not _CITATION_HINT.search(" ".join(lines[j].text for j in prev[-3:])):
        return []
    chosen: list[int] = []
    for k in range(1, min(3, len(prev)) + 1):
        cand = prev[-k:]
        first = lines[cand[0]].text
        if first.startswith(" "):
            break
        body_break = any(
            re.search(r"[a-z]\.\s+[A-Z][a-z]", lines[j].text)
            and not _CITATION_HINT.search(lines[j].text)
            for j in cand
        )
        if body_break:
            break
        if first.strip()[:1].isupper():
            chosen = cand
    if chosen and not _CITATION_END.search(last):
        # Ending in a plain sentence, it must at least open like a reference: "Name (2019)."
        if not re.search(r"\((19|20)\d\d\)", lines[chosen[0]].text):
            return []
    return chosen


# ---------------------------------------------------------------- the walk


@dataclass
class _Para:
    kind: str
    section: tuple[str, ...]
    title: str | None
    pieces: list[tuple[str, int | None]] = field(default_factory=list)  # (text, page)
    entry: int = 0  # case journal entry counter; paragraphs of different entries do not merge

    def text(self) -> str:
        return "".join(p for p, _ in self.pieces)


def structure_lines(lines: list[SourceLine], is_pdf: bool, markdown: bool) -> Structured:
    raw = [ln.text for ln in lines]
    warnings: list[str] = []
    toc = find_toc(raw)
    skip: set[int] = set()
    if toc:
        skip.update(range(toc.start, toc.end))
    for i, text in enumerate(raw):
        if _LEADER_LINE.search(text) or re.fullmatch(r"\s*[-|]{2,}[-|\s]*", text):
            skip.add(i)  # leftover TOC lines, table rules
    markers: dict[int, int] = {}
    if is_pdf:
        for i, ln in enumerate(lines):
            if re.fullmatch(r"\s*\d{1,4}\s*", ln.text) and _edge_of_pdf_page(lines, i):
                skip.add(i)  # a printed page number; PDF page indices are used instead
    else:
        markers = find_page_markers(raw, skip)

    finder = HeadingFinder(toc, markdown)
    heading_at: dict[int, Heading] = {}
    prev_ends = True
    special = False  # inside a glossary or case section: no run-in sub-headings there
    i = 0
    while i < len(lines):
        if i in skip or i in markers or _is_blank(raw[i]) or re.fullmatch(r"\s*\d{1,3}\s*", raw[i]):
            i += 1
            continue
        h = finder.match(lines, i, prev_ends and not special)
        if h:
            heading_at[i] = h
            if h.style not in ("minor", "box"):
                names = (h.title, *(h.toc_parents or ()))
                special = any(
                    _GLOSSARY_SECTION.search(n) or _CASE_SECTION.search(n) for n in names
                )
            for k in range(i + 1, i + h.consumed + 1):
                skip.add(k)
            i += h.consumed + 1
            prev_ends = True
            continue
        prev_ends = bool(_TERMINAL.search(remove_note_markers(raw[i].strip())))
        i += 1

    notes = (
        find_note_regions(lines, skip, markers, lambda j: j in heading_at)
        if not markdown
        else {}
    )
    for j in list(notes):
        if j in heading_at:
            del notes[j]

    if not is_pdf:
        anchors = {
            i: h.toc_page for i, h in heading_at.items() if h.toc_page is not None
        } if markers else {}
        for i, page in enumerate(assign_pages(len(lines), markers, anchors)):
            lines[i].page = page

    walker = _Walker(lines, warnings)
    walker.has_toc = toc is not None and len(toc.entries) >= 5
    walker.has_endnotes = any(_SUP_NOTE.match(t) for t in raw)
    for i, ln in enumerate(lines):
        if i in heading_at:
            walker.heading(heading_at[i], ln.page)
        elif i in skip or i in markers:
            continue
        elif _is_blank(ln.text):
            walker.blank()
        elif i in notes:
            walker.note_line(ln, notes[i])
        elif _CIRCLED_NOTE.match(ln.text):
            m = _CIRCLED_NOTE.match(ln.text)
            walker.page_note(m.group(2), unicodedata.digit(m.group(1)), ln.page)
        elif _SUP_NOTE.match(ln.text):
            m = _SUP_NOTE.match(ln.text)
            walker.endnote(m.group(2), int(m.group(1)), ln.page)
        else:
            walker.body_line(ln)
    walker.close()
    text, blocks, page_marks = walker.render()
    # PDF: the number of pages; text: the highest printed page any cleaned text is on.
    known = [page for _, page in page_marks if page is not None]
    page_count = max(known, default=0)
    return Structured(text, blocks, page_count, walker.first_title, warnings, page_marks)


def _edge_of_pdf_page(lines: list[SourceLine], i: int) -> bool:
    page = lines[i].page
    before = [j for j in range(i - 1, max(-1, i - 4), -1) if lines[j].page == page]
    after = [j for j in range(i + 1, min(len(lines), i + 4)) if lines[j].page == page]
    first = all(_is_blank(lines[j].text) for j in before)
    last = all(_is_blank(lines[j].text) for j in after)
    return first or last


class _Walker:
    def __init__(self, lines: list[SourceLine], warnings: list[str]):
        self.lines = lines
        self.warnings = warnings
        self.stack: list[tuple[int, str]] = []
        self.elements: list[tuple[str, object]] = []  # ("heading", str) | ("para", _Para)
        self.para: _Para | None = None
        self.pending_notes: list[_Para] = []
        self.note: _Para | None = None
        self.saw_blank = False
        self.interrupted = False  # notes or a page break since the last body line
        self.entry = 0
        self.first_title: str | None = None
        self.has_toc = False
        self.has_endnotes = False

    # -- section state
    @property
    def section(self) -> tuple[str, ...]:
        return tuple(title for _, title in self.stack)

    def mode(self) -> str:
        sec = self.section
        if any(_GLOSSARY_SECTION.search(s) for s in sec):
            return "glossary"
        if any(_CASE_SECTION.search(s) for s in sec):
            return "case"
        if sec and _BOX.match(sec[-1]):
            return "box"
        if any(_REFERENCE_SECTION.match(s) for s in sec):
            return "footnote"
        return "body"

    def heading(self, h: Heading, page: int | None) -> None:
        self.close()
        if self.first_title is None:
            self.first_title = h.title
        if h.toc_parents is not None:
            # The TOC knows where this heading belongs (002's file order and levels are wrong).
            self.stack = [(k + 1, p) for k, p in enumerate(h.toc_parents)]
            level = len(self.stack) + 1
        else:
            level = self._level(h)
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, h.title))
        self.elements.append(("heading", h.title))
        self.saw_blank = False
        self.interrupted = False

    def _level(self, h: Heading) -> int:
        style = title_level(h.title)[0] if h.style == "md" else h.style
        if style in ("chapter", "roman", "appendix"):
            return 1
        if style == "named":
            # Not in the TOC although the document has one: a sub-heading of the current part
            # ("## Acknowledgements" in the middle of 002's Part II), not a new top level.
            return self.stack[-1][0] + 1 if self.has_toc and self.stack else 1
        if h.style == "md":
            return max(h.level, 2) if self.stack and self.stack[0][0] == 1 else h.level
        if h.style == "numbered":
            base = 0
            if self.stack and self.stack[0][1] and title_level(self.stack[0][1])[0] in (
                "chapter", "roman", "appendix"
            ):
                base = 1
            return base + h.level
        if h.style == "lroman":
            # "ii." is a sibling of "i.", both one level below the current heading.
            for level, title in reversed(self.stack):
                if re.match(r"^[ivx]+\.\s", title):
                    return level
            return (self.stack[-1][0] + 1) if self.stack else 1
        return h.level

    # -- body text
    def blank(self) -> None:
        self.saw_blank = True

    def body_line(self, ln: SourceLine) -> None:
        self._close_note()
        text = ln.text
        page_start = text.startswith(" ") and not text.startswith("  ")
        clean, inline_notes = self._clean_line(text)
        if not clean:
            return
        mode = self.mode()
        if _ORPHAN_REFERENCE.search(clean) and len(clean.split()) <= 60:
            self.close()
            section = ("Endnotes",) if self.has_endnotes else self.section
            self.elements.append(("para", _Para("footnote", section, None, [(clean, ln.page)])))
            self.saw_blank = self.interrupted = False
            return
        if mode == "glossary":
            m = _GLOSSARY_ENTRY.match(clean)
            if m and _is_title_case(m.group(1).split()) and len(m.group(1).split()) <= 9:
                self.close()
                term = m.group(1).strip()
                if term.startswith('"') and term.endswith('"') and term.count('"') == 2:
                    term = term.strip('"')
                self.para = _Para("glossary", self.section, term, [], 0)
                self.para.pieces.append((clean, ln.page))
                self.saw_blank = self.interrupted = False
                return
        if mode == "case" and _ENTRY_START.match(clean):
            self.close()
            self.entry += 1
        if self.para is not None and self._joins(clean, page_start):
            prev = self.para.pieces[-1][0]
            if prev.endswith("-") and not prev.endswith(" -") and clean[:1].islower():
                glue = ""
                self.para.pieces[-1] = (self._dehyphen(prev, clean), self.para.pieces[-1][1])
            elif (
                self.saw_blank
                and not self.interrupted
                and not clean[:1].islower()
                and self._separate_paragraphs(prev)
            ):
                glue = "\n\n"
            else:
                glue = " "
            self.para.pieces.append((glue + clean, ln.page))
        else:
            self.close()
            kind = {"glossary": "body"}.get(mode, mode)
            title = self.section[-1] if kind in ("case", "box") and self.section else None
            self.para = _Para(kind, self.section, title, [(clean, ln.page)], self.entry)
        for anchor, note_text in inline_notes:
            title = f"Note on: {anchor}" if anchor else None
            self.pending_notes.append(
                _Para("footnote", self.section, title, [(note_text, ln.page)])
            )
        self.saw_blank = self.interrupted = False

    def _separate_paragraphs(self, prev: str) -> bool:
        return bool(_TERMINAL.search(prev))

    def _joins(self, clean: str, page_start: bool) -> bool:
        """Does this line continue the open paragraph (broken line, page break, notes between)?"""
        assert self.para is not None
        prev = self.para.text().rstrip()
        if self.para.kind == "glossary":
            return True
        if _LIST_ITEM.match(clean) or _LABELLED.match(clean):
            return False  # "- item", "(1) item", "Abstract: ...": a new paragraph
        if clean[:1].islower() or clean[:1] in ",;)":
            return True
        ended = bool(_TERMINAL.search(prev))
        if not ended:
            return True  # a sentence cut by a line break, a blank line, a page break or notes
        if not self.saw_blank and not self.interrupted:
            # Wrapped lines of a printed page are short; one-paragraph-per-line files are not.
            return len(self.para.pieces[-1][0]) < 120 and not _LIST_ITEM.match(clean)
        return self.para.kind in ("case", "box") or bool(self.saw_blank)

    def _dehyphen(self, prev: str, nxt: str) -> str:
        """Keep "poverty-" + "stricken"; drop the hyphen of "pro-" + "vide" (a split word)."""
        left = re.search(r"([A-Za-z]+)-$", prev)
        right = re.match(r"([A-Za-z]+)", nxt)
        if left and right and left.group(1).islower() and right.group(1).islower():
            joined = left.group(1) + right.group(1)
            hyphenated = f"{left.group(1)}-{right.group(1)}"
            text = self._all_text()
            n_joined = len(re.findall(rf"\b{joined}\b", text, re.IGNORECASE))
            n_hyphen = len(re.findall(rf"\b{hyphenated}\b", text, re.IGNORECASE))
            # Extraction also drops hyphens ("povertystricken"): the majority spelling wins.
            if n_joined > n_hyphen:
                return prev[:-1]
        return prev

    def _all_text(self) -> str:
        cached = getattr(self, "_text_cache", None)
        if cached is None:
            cached = " ".join(ln.text for ln in self.lines)
            self._text_cache = cached
        return cached

    def _clean_line(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """The line without its inline [notes], and each note with the words it is attached
        to ("Two Assurances and Three Guarantees[This refers to ...]"): the anchor becomes the
        note's title, so a search for the term finds the note that explains it."""
        notes: list[tuple[str, str]] = []

        def keep_note(m: re.Match[str]) -> str:
            before = re.split(r"[.;:!?]\s", strip_markup(m.string[: m.start()]))[-1].split()
            anchor = collapse_spaces(" ".join(before[-_ANCHOR_WORDS:]))
            notes.append((anchor, collapse_spaces(m.group(1))))
            return ""

        text = strip_markup(text)
        text = _BRACKET_NOTE.sub(keep_note, text)
        text = remove_note_markers(text)
        return collapse_spaces(text), notes

    # -- notes
    def note_line(self, ln: SourceLine, number: int | None) -> None:
        clean = collapse_spaces(strip_markup(ln.text))
        sup = _SUPERSCRIPT_NOTE.match(clean)
        if sup:
            clean = sup.group(2)
        if not clean:
            return
        if re.fullmatch(r"\d{1,2}", clean):
            self.interrupted = True
            return  # a note number listed on its own; the text follows
        if number is not None or self.note is None:
            self._close_note()
            numbered = _NUMBERED_NOTE.match(clean)
            if numbered and number not in (None, -1):
                clean = numbered.group(2)
            title = f"note {number}" if number not in (None, -1) else None
            self.note = _Para("footnote", self.section, title, [(clean, ln.page)])
        else:
            prev = self.note.pieces[-1][0]
            if prev.endswith("-") and clean[:1].islower():
                glue = ""
            elif re.search(r"(https?://\S+|\.)$", prev) and re.match(r"^(s?html?|\w+/)", clean):
                glue = ""  # a URL broken over two lines
            else:
                glue = " "
            self.note.pieces.append((glue + clean, ln.page))
        self.interrupted = True

    def page_note(self, text: str, number: int, page: int | None) -> None:
        """A numbered note between body lines; kept apart, emitted after the open paragraph."""
        self._close_note()
        clean = collapse_spaces(strip_markup(text))
        if clean:
            self.note = _Para("footnote", self.section, f"note {number}", [(clean, page)])
        self.interrupted = True

    def endnote(self, text: str, number: int, page: int | None) -> None:
        self._close_note()
        self.close()
        clean = collapse_spaces(strip_markup(text))
        if clean:
            self.elements.append(("para", _Para("footnote", ("Endnotes",), f"note {number}",
                                                [(clean, page)])))

    def _close_note(self) -> None:
        if self.note is not None:
            if self.para is None:
                self.elements.append(("para", self.note))
            else:
                self.pending_notes.append(self.note)
            self.note = None

    def close(self) -> None:
        self._close_note()
        if self.para is not None:
            self.elements.append(("para", self.para))
            self.para = None
        for note in self.pending_notes:
            self.elements.append(("para", note))
        self.pending_notes = []

    # -- output
    def render(self) -> tuple[str, list[Block], list[tuple[int, int | None]]]:
        """Cleaned text (headings on their own lines) and blocks pointing into it.

        Adjacent paragraphs of one kind, section and title form one block (a "body run"), so
        the chunker packs them together but never across a heading, a note or a kind change.
        """
        parts: list[str] = []
        offset = 0
        page_marks: list[tuple[int, int | None]] = []
        spans: list[tuple[_Para, int, int]] = []
        for kind, payload in self.elements:
            if parts:
                parts.append("\n\n")
                offset += 2
            if kind == "heading":
                assert isinstance(payload, str)
                parts.append(payload)
                offset += len(payload)
                continue
            assert isinstance(payload, _Para)
            start = offset
            for piece, page in payload.pieces:
                page_marks.append((offset, page))
                parts.append(piece)
                offset += len(piece)
            spans.append((payload, start, offset))
        text = "".join(parts)
        mark_offsets = [m[0] for m in page_marks]

        def page_at(pos: int) -> int | None:
            k = bisect.bisect_right(mark_offsets, pos) - 1
            return page_marks[k][1] if k >= 0 else None

        blocks: list[Block] = []
        group: list[tuple[_Para, int, int]] = []

        def flush() -> None:
            if not group:
                return
            para, start, end = group[0][0], group[0][1], group[-1][2]
            # Strip whitespace left by de-hyphenation or glue at the edges.
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start < end:
                blocks.append(
                    Block(
                        text=text[start:end],
                        kind=para.kind,
                        section=para.section,
                        page_start=page_at(start),
                        page_end=page_at(end - 1),
                        char_start=start,
                        char_end=end,
                        title=para.title,
                    )
                )
            group.clear()

        for para, start, end in spans:
            if group:
                last, _, last_end = group[-1]
                same = (
                    last.kind == para.kind
                    and last.section == para.section
                    and last.title == para.title
                    and last.entry == para.entry
                    and para.kind not in ("glossary", "footnote")
                    and text[last_end:start].strip() == ""
                )
                if not same:
                    flush()
            group.append((para, start, end))
        flush()
        return text, blocks, page_marks
