"""Answers and course packs as files people edit: Markdown (footnotes) and DOCX (python-docx).

    >>> from kb.pack import build_pack
    >>> pack = build_pack("relocation", kbase)
    >>> Path("relocation.md").write_text(pack_markdown(pack))
    >>> write_pack_docx(pack, Path("relocation.docx"))

Citations are footnote-style: a marker after each quote, and a numbered source list naming the
document, its publisher and date, the section and the page. python-docx has no footnote API, so
the DOCX carries superscript markers and the same list under "Sources" (endnotes, in effect).
"""

from __future__ import annotations

import re
from pathlib import Path

from docx import Document as DocxDocument
from docx.shared import Pt

from kb.pack import CoursePack
from kb.records import Answer, Citation

_MARKER = re.compile(r"\[(\d+)\]")


def publisher_short(publisher: str) -> str:
    return publisher.split(" (")[0]


def reference(c: Citation) -> str:
    """`Title — Publisher, date — Section — p. N` (plain text; no Markdown)."""
    d, ch = c.document, c.chunk
    parts = [d.title, f"{publisher_short(d.publisher)}, {d.published or 'undated'}"]
    if ch.section:
        parts.append(ch.section.replace(" > ", ", "))
    if ch.page_start:
        pages = ch.page_start if ch.page_end in (None, ch.page_start) else (
            f"{ch.page_start}-{ch.page_end}")
        parts.append(f"p. {pages}")
    return " — ".join(parts)


def reference_md(c: Citation) -> str:
    d = c.document
    rest = reference(c)[len(d.title):]
    return f"*{_md_escape(d.title)}*{_md_escape(rest)}"


def _md_escape(text: str) -> str:
    """Document text inside Markdown: no accidental emphasis, links or HTML."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def _quote_md(text: str) -> str:
    return _md_escape(" ".join(text.split()))


def answer_markdown(result: Answer) -> str:
    """The answer with its citations as Markdown footnotes, ready to paste into a note.

    Sentences are the sources' own words; each `[n]` becomes `[^n]` and each footnote names the
    document, section and page and quotes the supporting span.
    """
    lines = [f"**Q: {_md_escape(result.question)}**", ""]
    if result.abstained:
        lines.append(_first_paragraph(result.text))
        if result.citations:
            lines += ["", "Closest passages (not an answer):", ""]
            lines += [f"- \"{_quote_md(c.quote)}\"[^{c.n}]" for c in result.citations]
    else:
        body = " ".join(
            _quote_md(s.text) + "".join(f"[^{n}]" for n in s.citations) for s in result.sentences
        )
        lines.append(body or _first_paragraph(result.text))
    for note in result.notes:
        if note.startswith(("anchor coverage", "no passages", "the documents never")):
            continue  # the abstention's internal reasons, not for readers
        lines += ["", _MARKER.sub(r"[^\1]", note)]
    if result.citations:
        lines.append("")
        for c in result.citations:
            lines.append(f"[^{c.n}]: {reference_md(c)}. \"{_quote_md(c.quote)}\"")
    return "\n".join(lines).strip() + "\n"


def _first_paragraph(text: str) -> str:
    return text.split("\n\n", 1)[0].strip()


def pack_markdown(pack: CoursePack) -> str:
    """The whole pack as Markdown, citations as footnotes `[^n]`."""
    out = [f"# Course pack: {_md_escape(pack.topic)}", ""]
    out.append("All quotations are verbatim from the sources; every one is cited below.")
    for note in pack.notes:
        out += ["", f"> {note}"]
    if pack.concepts:
        out += ["", "## Key concepts", ""]
        for c in pack.concepts:
            aka = f" (also: {', '.join(c.aliases)})" if c.aliases else ""
            out.append(f"- **{_md_escape(c.term)}**{_md_escape(aka)}: "
                       f"\"{_quote_md(c.definition)}\"[^{c.n}]")
    if pack.facts:
        out += ["", "## Key facts", ""]
        for i, f in enumerate(pack.facts, 1):
            out.append(f"{i}. \"{_quote_md(f.quote)}\"[^{f.n}] ({_dated(pack.citation(f.n))})")
    if pack.cases:
        out += ["", "## Case studies", ""]
        for case in pack.cases:
            out += [f"### {_md_escape(case.title)}", "",
                    f"> {_quote_md(case.quote)}[^{case.n}]", ""]
    if pack.discussion:
        out += ["", "## Discussion questions", ""]
        out += [f"{i}. {_md_escape(q)}" for i, q in enumerate(pack.discussion, 1)]
    if pack.quiz:
        out += ["", "## Quiz", "", "Fill in the blanks."]
        out.append("")
        out += [f"{i}. {_quote_md(q.prompt)}" for i, q in enumerate(pack.quiz, 1)]
        out += ["", "### Answers", ""]
        out += [f"{i}. {_md_escape(q.answer)}[^{q.n}]" for i, q in enumerate(pack.quiz, 1)]
    if pack.citations:
        out += ["", "## Sources", ""]
        out += [f"[^{c.n}]: {reference_md(c)}." for c in pack.citations]
    return "\n".join(out).replace("\n\n\n", "\n\n").strip() + "\n"


def _dated(c: Citation) -> str:
    return f"{publisher_short(c.document.publisher)}, {c.document.published or 'undated'}"


def pack_docx(pack: CoursePack):  # type: ignore[no-untyped-def]
    """The pack as a python-docx Document (save it with `.save(path)`)."""
    doc = DocxDocument()
    doc.core_properties.title = f"Course pack: {_plain(pack.topic)}"[:250]
    doc.add_heading(f"Course pack: {_plain(pack.topic)}", level=0)
    doc.add_paragraph("All quotations are verbatim from the sources; the numbers in brackets "
                      "refer to the list of sources at the end.")
    for note in pack.notes:
        doc.add_paragraph(note, style="Intense Quote")
    if pack.concepts:
        doc.add_heading("Key concepts", level=1)
        for c in pack.concepts:
            p = doc.add_paragraph(style="List Bullet")
            p.add_run(_plain(c.term)).bold = True
            if c.aliases:
                p.add_run(f" (also: {', '.join(c.aliases)})")
            p.add_run(f": “{_plain(c.definition)}”")
            _marker(p, c.n)
    if pack.facts:
        doc.add_heading("Key facts", level=1)
        for f in pack.facts:
            p = doc.add_paragraph(f"“{_plain(f.quote)}”", style="List Number")
            _marker(p, f.n)
            p.add_run(f" ({_dated(pack.citation(f.n))})").italic = True
    if pack.cases:
        doc.add_heading("Case studies", level=1)
        for case in pack.cases:
            doc.add_heading(_plain(case.title), level=2)
            p = doc.add_paragraph(f"“{_plain(case.quote)}”", style="Quote")
            _marker(p, case.n)
    if pack.discussion:
        doc.add_heading("Discussion questions", level=1)
        for q in pack.discussion:
            doc.add_paragraph(q, style="List Number 2")
    if pack.quiz:
        doc.add_heading("Quiz", level=1)
        doc.add_paragraph("Fill in the blanks.")
        for i, q in enumerate(pack.quiz, 1):
            doc.add_paragraph(f"{i}. {_plain(q.prompt)}")
        doc.add_heading("Answers", level=2)
        for i, q in enumerate(pack.quiz, 1):
            p = doc.add_paragraph(f"{i}. {_plain(q.answer)}")
            _marker(p, q.n)
    if pack.citations:
        doc.add_heading("Sources", level=1)
        for c in pack.citations:
            p = doc.add_paragraph()
            p.add_run(f"[{c.n}] ")
            p.add_run(_plain(c.document.title)).italic = True
            p.add_run(_plain(reference(c)[len(c.document.title):]) + ".")
            for run in p.runs:
                run.font.size = Pt(9)
    return doc


def write_pack_docx(pack: CoursePack, path: Path) -> Path:
    pack_docx(pack).save(str(path))
    return path


def write_pack(pack: CoursePack, path: Path) -> Path:
    """Markdown or DOCX by the file's extension (.md, .markdown, .docx)."""
    suffix = path.suffix.lower()
    if suffix == ".docx":
        return write_pack_docx(pack, path)
    if suffix in (".md", ".markdown", ".txt"):
        path.write_text(pack_markdown(pack), encoding="utf-8")
        return path
    raise ValueError(f"unknown export format {path.suffix!r}: use .md or .docx")


def _plain(text: str) -> str:
    # Control characters are not allowed in DOCX XML; documents may contain them.
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", " ".join(text.split()))


def _marker(paragraph, n: int) -> None:  # type: ignore[no-untyped-def]
    run = paragraph.add_run(f"[{n}]")
    run.font.superscript = True
