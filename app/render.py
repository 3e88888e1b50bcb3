"""Answers, sources and documents as Markdown and HTML for the web UI (no Gradio here).

Everything that comes from a document is escaped with html.escape: documents may contain
hostile text ("<script>", "ignore previous instructions"), and it must show as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import quote, urlencode

from app.export import publisher_short
from ingest.records import Chunk, Document
from kb.records import Answer, Citation

PASSAGE_CONTEXT = 350  # characters shown either side of a highlighted quote in the panel
ABSTAIN_BADGE = "⚠️ **Not found in the documents.**"
ERROR_MESSAGE = (
    "⚠️ **Sorry, this question could not be answered** because of an internal error "
    "({kind}). Please try again, or rephrase the question. The error has been logged."
)
_INTERNAL_NOTE = re.compile(r"^(anchor coverage|no passages|the documents never mention)")


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def source_url(chunk: Chunk, start: int | None = None, end: int | None = None) -> str:
    """Relative link to the passage in its document (works behind a proxy prefix too)."""
    params = {"start": chunk.char_start if start is None else start,
              "end": chunk.char_end if end is None else end}
    return f"kb/source/{quote(chunk.doc_id)}?{urlencode(params)}#kb-hl"


def file_url(document: Document, page: int | None = None) -> str:
    """The original file; PDFs open at the page (`#page=N`, honoured by browsers' viewers)."""
    url = f"kb/file/{quote(document.doc_id)}"
    if page and document.source.lower().endswith(".pdf"):
        url += f"#page={page}"
    return url


def citation_url(c: Citation) -> str:
    if c.document.source.lower().endswith(".pdf") and c.chunk.page_start:
        return file_url(c.document, c.chunk.page_start)
    return source_url(c.chunk, c.doc_start, c.doc_end)


def location(chunk: Chunk) -> str:
    parts = []
    if chunk.section:
        parts.append(chunk.section.replace(" > ", " › "))
    if chunk.page_start:
        parts.append(f"p. {chunk.page_start}")
    return ", ".join(parts) or "(no section)"


def short_reference(c: Citation) -> str:
    """`Title (Publisher, 2021), Section, p. 88` in Markdown, document text escaped."""
    d = c.document
    return (f"*{_md(d.title)}* ({_md(publisher_short(d.publisher))}, "
            f"{_md(d.published or 'undated')}), {_md(location(c.chunk))}")


def _md(text: str) -> str:
    """Document text inside chat Markdown: shown literally (no HTML, links or emphasis)."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def public_notes(result: Answer) -> list[str]:
    return [n for n in result.notes if not _INTERNAL_NOTE.match(n)]


def chat_pieces(result: Answer) -> Iterator[str]:
    """The chat message of an answer in pieces, for streaming: each answer sentence with its
    [n] marker, then notes, then the references (each with a link to the passage)."""
    if result.abstained:
        if not result.citations and not result.passages:
            yield _md(result.text)  # e.g. the empty-question message
            return
        yield f"{ABSTAIN_BADGE} {_md(result.text.split(chr(10))[0])}"
        if result.citations:
            yield "\n\n*Closest passages (not an answer):*\n"
            for c in result.citations:
                yield f"\n> [{c.n}] “{_md(_squash(c.quote))}”\n"
    else:
        for i, s in enumerate(result.sentences):
            marks = "".join(f" [{n}]" for n in s.citations)
            yield ("" if i == 0 else " ") + _md(s.text) + marks
    for note in public_notes(result):
        yield f"\n\n*{_md(note)}*"
    if result.citations:
        yield "\n\n" + "  \n".join(
            f"[{c.n}] {short_reference(c)} — [open]({citation_url(c)})" for c in result.citations
        )


def chat_message(result: Answer) -> str:
    return "".join(chat_pieces(result))


def _squash(text: str) -> str:
    return " ".join(text.split())


def highlighted_passage(c: Citation, context: int = PASSAGE_CONTEXT) -> str:
    """The passage around the quote, escaped, with the quote inside <mark>."""
    text = c.chunk.text
    lo = max(0, c.quote_start - context)
    hi = min(len(text), c.quote_end + context)
    before, quote_, after = text[lo:c.quote_start], c.quote, text[c.quote_end:hi]
    return (("… " if lo > 0 else "") + e(before) + f"<mark>{e(quote_)}</mark>" + e(after)
            + (" …" if hi < len(text) else ""))


def sources_html(result: Answer | None) -> str:
    """The sources panel beside the chat: one card per citation, the quote highlighted."""
    if result is None:
        return ('<div class="kb-sources kb-empty"><p>Sources appear here: for each citation the '
                'document, its date, section and page, and the passage with the quoted words '
                'highlighted.</p></div>')
    if not result.citations:
        return ('<div class="kb-sources kb-empty"><p>No passages to show.</p></div>')
    klass = "kb-sources kb-abstained" if result.abstained else "kb-sources"
    head = ("Closest passages: the documents do not answer this question"
            if result.abstained else "Sources")
    cards = []
    for c in result.citations:
        d = c.document
        links = [f'<a href="{e(source_url(c.chunk, c.doc_start, c.doc_end))}" target="_blank" '
                 f'rel="noopener">Open passage in the document ↗</a>']
        if d.source.lower().endswith(".pdf"):
            links.append(f'<a href="{e(file_url(d, c.chunk.page_start))}" target="_blank" '
                         f'rel="noopener">Open the PDF at page {e(c.chunk.page_start or 1)} ↗</a>')
        cards.append(
            f'<div class="kb-source" id="kb-source-{c.n}">'
            f'<div class="kb-source-head"><span class="kb-n">[{c.n}]</span> '
            f'<span class="kb-title">{e(d.title)}</span></div>'
            f'<div class="kb-meta">{e(d.publisher)} · published {e(d.published or "undated")}'
            f' · {e(location(c.chunk))}</div>'
            f'<blockquote class="kb-passage">{highlighted_passage(c)}</blockquote>'
            f'<div class="kb-links">{" · ".join(links)}</div></div>'
        )
    return f'<div class="{klass}"><h3>{e(head)}</h3>{"".join(cards)}</div>'


def source_page(document: Document, text: str, start: int, end: int,
                context: int = 4000) -> str:
    """A standalone HTML page: the cleaned document text around [start, end), highlighted."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    lo, hi = max(0, start - context), min(len(text), end + context)
    body = (("[…]\n" if lo else "") + e(text[lo:start]) + f'<mark id="kb-hl">{e(text[start:end])}'
            "</mark>" + e(text[end:hi]) + ("\n[…]" if hi < len(text) else ""))
    pdf = ""
    if document.source.lower().endswith(".pdf"):
        pdf = f' · <a href="../file/{e(quote(document.doc_id))}">the original PDF</a>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(document.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
line-height:1.55;color:#222}}
pre{{white-space:pre-wrap;font-family:Georgia,serif;font-size:1.02rem}}
mark{{background:#ffe066;padding:.1em 0}} .meta{{color:#555}}
</style></head><body>
<h1>{e(document.title)}</h1>
<p class="meta">{e(document.publisher)} · published {e(document.published or "undated")}
· file {e(document.source)}{pdf}</p>
<p class="meta">The highlighted words are the ones cited; the text is the cleaned text the
knowledge base indexed.</p>
<pre>{body}</pre>
<script>document.getElementById("kb-hl").scrollIntoView({{block:"center"}});</script>
</body></html>"""


def document_rows(documents: list[Document], chunks: dict[str, int]) -> list[list[object]]:
    return [
        [d.title, d.publisher, d.published or "", d.pages or "", chunks.get(d.doc_id, 0),
         d.doc_id, d.source]
        for d in documents
    ]


DOCUMENT_HEADERS = ["Title", "Publisher", "Published", "Pages", "Chunks", "Doc id", "File"]
