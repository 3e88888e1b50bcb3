"""The web app: a Gradio Blocks page (Ask, Library, Glossary, Course pack) over one
KnowledgeBase, plus two small routes that show a cited passage in its document.

    >>> demo = build_app(KnowledgeBase(Settings()))
    >>> serve(settings)                       # what `kb serve` runs

The handlers are thin: answers come from kb.answer.answer (the same function `kb ask` calls),
packs from kb.pack, rendering from app/render.py and app/export.py, uploads from app/library.py.
No conversation state lives on the server beyond the browser session's own State, so several
replicas can run behind a proxy.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from app import render
from app.auth import check_exposure, checker, load_users
from app.evaluate import evaluate_tab
from app.export import answer_markdown, pack_markdown, write_pack_docx
from app.library import (
    ReadWriteLock,
    add_uploads,
    delete_document,
    glossary_entries,
)
from kb.answer import answer
from kb.index import KnowledgeBase
from kb.pack import build_pack
from kb.records import Answer, Filters
from kb.settings import Settings
from kb.store import StoreUnavailable

log = logging.getLogger("policykb.app")
STORE_DOWN_MESSAGE = (  # the detail (which store, why) goes to the log, not to the user
    "⚠️ **The documents cannot be searched right now** (the search index is not answering), "
    "so this question was not answered. Please ask again in a minute; if this keeps "
    "happening, tell the administrator."
)

TITLE = "policykb — cited answers on China's poverty alleviation"
HINT = (
    "Ask a question about China's poverty-alleviation policy. Every sentence of an answer is "
    "**quoted from a source document** and carries a citation [n]; the panel on the right shows "
    "each passage with the quoted words highlighted, and a link to it in the document. "
    "When the documents do not answer, the assistant says so and shows the closest passages. "
    "You may ask in English, French, Spanish, Portuguese or Arabic: **answers are quoted from "
    "the English sources**. Follow-up questions (\"and in 2020?\") use the conversation."
)
EXAMPLES = [
    "What are the five batches?",
    "How many people were relocated?",
    "What was the poverty line in Kenya in 2019?",
    "Qu'est-ce que la lutte ciblée contre la pauvreté ?",
]
ANY_YEAR = "any"
CSS = """
.kb-sources h3 {margin: 0 0 .5rem 0}
.kb-source {border: 1px solid var(--border-color-primary); border-left: 4px solid #2b6cb0;
  border-radius: 6px; padding: .6rem .8rem; margin-bottom: .7rem}
.kb-abstained .kb-source {border-left-color: #d69e2e}
.kb-abstained h3 {color: #975a16}
.kb-n {font-weight: 700} .kb-title {font-weight: 600}
.kb-meta {font-size: .85rem; opacity: .8; margin: .2rem 0}
.kb-passage {margin: .4rem 0; padding-left: .6rem; border-left: 2px solid #ccc;
  font-size: .92rem; white-space: pre-wrap}
.kb-passage mark {background: #ffe066; color: #111; padding: 0 .1em}
.kb-links {font-size: .85rem}
.kb-gloss {border-bottom: 1px solid var(--border-color-primary); padding: .6rem 0}
.kb-gloss .kb-aka {font-size: .85rem; opacity: .8}
.kb-gloss details {font-size: .88rem}
"""


class App:
    """One knowledge base, its lock and the settings the handlers need."""

    def __init__(self, kbase: KnowledgeBase):
        self.kbase = kbase
        self.settings: Settings = kbase.settings
        self.lock = ReadWriteLock()
        self.exports = Path(tempfile.mkdtemp(prefix="policykb-"))
        self._feedback_lock = threading.Lock()

    # -- helpers ------------------------------------------------------------------------------
    def document_choices(self) -> list[tuple[str, str]]:
        return [(f"{d.title[:70]} ({d.published or 'undated'})", d.doc_id)
                for d in self.kbase.documents()]

    def year_choices(self) -> list[str]:
        years = sorted({d.year for d in self.kbase.documents() if d.year})
        return [ANY_YEAR, *(str(y) for y in years)]

    def document_rows(self) -> list[list[Any]]:
        counts = {d.doc_id: len(self.kbase.catalog.chunk_ids(d.doc_id))
                  for d in self.kbase.documents()}
        return render.document_rows(self.kbase.documents(), counts)

    def _export_path(self, stem: str, suffix: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:40] or "export"
        folder = Path(tempfile.mkdtemp(dir=self.exports))
        return folder / f"{slug}{suffix}"

    # -- Ask ------------------------------------------------------------------------------------
    def ask(self, question: str, turns: list[dict[str, str]], doc_ids: list[str] | None,
            year_from: str | None, year_to: str | None, strict: bool) -> Answer:
        years = {"year_from": _year(year_from), "year_to": _year(year_to)}
        history = list(turns or [])
        with self.lock.read():
            if not doc_ids:
                return answer(question, self.kbase, history=history, filters=Filters(**years))
            chosen = Filters(doc_ids=tuple(doc_ids), **years)
            result = answer(question, self.kbase, history=history, filters=chosen)
            if strict or not result.abstained or not result.passages:
                return result
            # Not strict: the selected documents come first, the library is the fallback.
            wider = answer(question, self.kbase, history=history, filters=Filters(**years))
            if wider.abstained:
                return result
            note = ("The selected documents do not say; this answer comes from the other "
                    "documents in the library.")
            return dataclasses.replace(wider, notes=(note, *wider.notes))

    def respond(self, message: str, chat: list[dict[str, Any]] | None,
                turns: list[dict[str, str]] | None, doc_ids: list[str] | None,
                year_from: str | None, year_to: str | None, strict: bool,
                ) -> Iterator[tuple[Any, ...]]:
        """The chat handler: streams the answer sentence by sentence."""
        chat = list(chat or [])
        turns = list(turns or [])
        message = (message or "").strip()
        if not message:
            yield chat, "", gr.skip(), turns, gr.skip(), gr.skip(), gr.skip()
            return
        chat += [{"role": "user", "content": message},
                 {"role": "assistant", "content": "*Searching the documents…*"}]
        yield chat, "", gr.skip(), turns, gr.skip(), gr.skip(), gr.skip()
        try:
            result = self.ask(message, turns, doc_ids, year_from, year_to, bool(strict))
        except StoreUnavailable as exc:  # e.g. the Chroma server is down: say so; retried next time
            log.warning("answer failed, vector store unavailable: %s", exc)
            chat[-1] = {"role": "assistant", "content": STORE_DOWN_MESSAGE}
            yield chat, "", gr.skip(), turns, None, "", gr.skip()
            return
        except Exception as exc:  # noqa: BLE001 - shown as a message, logged with its trace
            log.exception("answer failed for %r", message[:200])
            chat[-1] = {"role": "assistant",
                        "content": render.ERROR_MESSAGE.format(kind=type(exc).__name__)}
            yield chat, "", gr.skip(), turns, None, "", gr.skip()
            return
        text = ""
        for piece in render.chat_pieces(result):
            text += piece
            chat[-1] = {"role": "assistant", "content": text}
            yield chat, "", gr.skip(), turns, gr.skip(), gr.skip(), gr.skip()
        turns.append({"question": message, "query": result.query or message})
        markdown = answer_markdown(result)
        path = self._export_path(message, ".md")
        path.write_text(markdown, encoding="utf-8")
        last = {"question": message, "answer": result.text, "abstained": result.abstained,
                "citations": [c.chunk.chunk_id for c in result.citations],
                "mode": result.mode, "evidence": round(result.evidence, 4)}
        yield (chat, "", render.sources_html(result), turns, last, markdown,
               gr.update(value=str(path), interactive=True))

    def feedback(self, rating: str, comment: str, last: dict[str, Any] | None,
                 request: gr.Request | None = None) -> tuple[str, str]:
        if not last:
            return "Ask a question first; feedback is about the last answer.", comment
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rating": rating,
                 "comment": (comment or "").strip()[:4000], **last,
                 "user": getattr(request, "username", None) if request else None}
        path = self.settings.data_dir / self.settings.app.feedback_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._feedback_lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return "Thank you: your feedback was recorded.", ""

    def feedback_up(self, comment: str, last: dict[str, Any] | None,
                    request: gr.Request) -> tuple[str, str]:
        return self.feedback("up", comment, last, request)

    def feedback_down(self, comment: str, last: dict[str, Any] | None,
                      request: gr.Request) -> tuple[str, str]:
        return self.feedback("down", comment, last, request)

    def like(self, data: gr.LikeData, last: dict[str, Any] | None,
             request: gr.Request) -> str:
        rating = "up" if data.liked else "down"
        return self.feedback(rating, "", last, request)[0]

    # -- Library --------------------------------------------------------------------------------
    def upload(self, files: list[str] | None, progress: gr.Progress | None = None
               ) -> tuple[Any, ...]:
        if not self.settings.app.uploads_enabled:
            raise gr.Error("Uploads are disabled on this server.")
        uploads = [(Path(f), Path(f).name) for f in (files or [])]

        def on_file(name: str, i: int, n: int) -> None:
            if progress is not None:
                progress((i, n), desc=f"Ingesting {name}")

        result = add_uploads(self.kbase, uploads, self.lock, self.settings.app.max_upload_mb,
                             on_file)
        return (result.message(), *self._library_updates(), None)

    def delete(self, doc_id: str | None) -> tuple[Any, ...]:
        if not self.settings.app.uploads_enabled:
            raise gr.Error("Deleting is disabled on this server.")
        if not doc_id:
            return ("Choose a document to delete.", *self._library_updates())
        try:
            document = delete_document(self.kbase, doc_id, self.lock)
        except KeyError as exc:
            return (f"Not deleted: {exc.args[0]}", *self._library_updates())
        return (f"Deleted: {document.title} ({document.source}): its passages left both "
                "indexes.", *self._library_updates())

    def _library_updates(self) -> tuple[Any, ...]:
        choices = self.document_choices()
        return (gr.update(value=self.document_rows()),
                gr.update(choices=choices, value=None),
                gr.update(choices=choices),
                gr.update(choices=self.year_choices()), gr.update(choices=self.year_choices()))

    # -- Glossary -------------------------------------------------------------------------------
    def glossary(self, query: str = "") -> str:
        with self.lock.read():
            entries = [g for g in glossary_entries(self.kbase) if g.matches(query or "")]
        return glossary_html(entries, query or "")

    # -- Course pack ----------------------------------------------------------------------------
    def pack(self, topic: str) -> tuple[Any, ...]:
        topic = (topic or "").strip()
        if not topic:
            return ("Give a topic, for example *relocation* or *the five batches*.",
                    gr.update(value=None, interactive=False),
                    gr.update(value=None, interactive=False))
        with self.lock.read():
            built = build_pack(topic, self.kbase)
        markdown = pack_markdown(built)
        md_path = self._export_path(f"course-pack-{topic}", ".md")
        md_path.write_text(markdown, encoding="utf-8")
        docx_path = md_path.with_suffix(".docx")
        write_pack_docx(built, docx_path)
        return (preview_markdown(markdown), gr.update(value=str(md_path), interactive=True),
                gr.update(value=str(docx_path), interactive=True))


def preview_markdown(markdown: str) -> str:
    """Footnote Markdown for the page, whose renderer has no footnotes: `[^n]` markers become
    `[n]` and the footnote definitions a list."""
    text = re.sub(r"^\[\^(\d+)\]: ", r"- [\1] ", markdown, flags=re.M)
    return re.sub(r"\[\^(\d+)\]", r" [\1]", text)


def _year(value: str | None) -> int | None:
    return int(value) if value and str(value).isdigit() else None


def glossary_html(entries: list[Any], query: str) -> str:
    e = render.e
    if not entries:
        return f"<p>No glossary term or alias matches “{e(query)}”.</p>"
    out = [f"<p>{len(entries)} terms. Defined terms come from the documents' glossaries; "
           "alias groups name one measure as different documents call it.</p>"]
    for g in entries:
        aka = (f'<div class="kb-aka">Also called: {e(", ".join(g.aliases))}</div>'
               if g.aliases else "")
        if g.chunk is not None:
            url = render.source_url(g.chunk)
            definition = (f"<p>{e(g.definition)}</p><div class=\"kb-meta\">— "
                          f"<i>{e(g.document.title)}"
                          f"</i> ({e(g.document.published or 'undated')}), "
                          f"{e(render.location(g.chunk))} · <a href=\"{e(url)}\" target=\"_blank\" "
                          "rel=\"noopener\">open ↗</a></div>")
        else:
            definition = "<p><i>No glossary definition; an alias group across documents.</i></p>"
        places = []
        for m in g.mentions:
            links = ", ".join(
                f'<a href="{e(render.source_url(c))}" target="_blank" rel="noopener">'
                f'{e(render.location(c))}</a>' for c in m.chunks[:8]
            )
            more = f" and {len(m.chunks) - 8} more" if len(m.chunks) > 8 else ""
            places.append(f"<li><i>{e(m.document.title)}</i> ({len(m.chunks)} passages): "
                          f"{links}{more}</li>")
        total = sum(len(m.chunks) for m in g.mentions)
        mentioned = (f"<details><summary>Mentioned in {len(g.mentions)} documents, {total} "
                     f"passages</summary><ul>{''.join(places)}</ul></details>"
                     if places else "<div class=\"kb-meta\">Not mentioned elsewhere.</div>")
        out.append(f'<div class="kb-gloss"><b>{e(g.term)}</b>{aka}{definition}{mentioned}</div>')
    return "".join(out)


def build_app(kbase: KnowledgeBase) -> gr.Blocks:
    """The Blocks page over `kbase` (not launched)."""
    state = App(kbase)
    s = kbase.settings.app
    with gr.Blocks(title=TITLE) as demo:
        demo.policykb = state  # type: ignore[attr-defined]  # for routes and tests
        gr.Markdown(f"# {TITLE}\n{HINT}", elem_id="kb-hint")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                turns = gr.State([])
                last = gr.State(None)
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(
                            label="Conversation", height=480, elem_id="kb-chat",
                            buttons=["copy"], feedback_options=("Like", "Dislike"),
                            placeholder="Answers appear here, each sentence cited [n].",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False, scale=5, elem_id="kb-question", max_lines=4,
                                placeholder="Ask a question, e.g. What are the five batches?",
                            )
                            ask_btn = gr.Button("Ask", variant="primary", scale=1,
                                                elem_id="kb-ask")
                        gr.Examples(EXAMPLES, inputs=question, label="Try")
                        with gr.Accordion("Filters: documents and years", open=False):
                            # Custom values pass Gradio's check of the choices this session
                            # was built with: another session may have added a document since.
                            docs = gr.Dropdown(state.document_choices(), multiselect=True,
                                               label="Documents", elem_id="kb-docs-filter",
                                               allow_custom_value=True)
                            with gr.Row():
                                year_from = gr.Dropdown(state.year_choices(), value=ANY_YEAR,
                                                        label="Published from")
                                year_to = gr.Dropdown(state.year_choices(), value=ANY_YEAR,
                                                      label="Published up to")
                            strict = gr.Checkbox(
                                False, label="Answer only from these documents",
                                info="Unticked: when the selected documents do not say, the "
                                     "other documents are searched and the answer says so.",
                            )
                        with gr.Row():
                            download = gr.DownloadButton("Download answer (.md)", value=None,
                                                         interactive=False, size="sm",
                                                         elem_id="kb-download")
                            new_chat = gr.Button("New conversation", size="sm")
                        with gr.Accordion("Answer as Markdown (footnote citations), feedback",
                                          open=False):
                            markdown = gr.Textbox(label="Answer as Markdown", lines=6,
                                                  buttons=["copy"], interactive=False,
                                                  elem_id="kb-answer-md")
                            comment = gr.Textbox(label="Comment on the last answer (optional)",
                                                 lines=2)
                            with gr.Row():
                                up = gr.Button("👍 Helpful", size="sm")
                                down = gr.Button("👎 Not helpful", size="sm")
                            thanks = gr.Markdown()
                    with gr.Column(scale=2):
                        sources = gr.HTML(render.sources_html(None), elem_id="kb-sources")
                ask_inputs = [question, chatbot, turns, docs, year_from, year_to, strict]
                ask_outputs = [chatbot, question, sources, turns, last, markdown, download]
                ask_btn.click(state.respond, ask_inputs, ask_outputs, api_name="ask")
                question.submit(state.respond, ask_inputs, ask_outputs, api_name=False)
                new_chat.click(
                    lambda: ([], [], None, render.sources_html(None), "",
                             gr.update(value=None, interactive=False)),
                    None, [chatbot, turns, last, sources, markdown, download], api_name=False,
                )
                up.click(state.feedback_up, [comment, last], [thanks, comment],
                         api_name="feedback_up")
                down.click(state.feedback_down, [comment, last], [thanks, comment],
                           api_name="feedback_down")
                chatbot.like(state.like, [last], [thanks], api_name=False)

            with gr.Tab("Library", id="library"):
                gr.Markdown("The documents the assistant answers from.")
                table = gr.Dataframe(state.document_rows(), headers=render.DOCUMENT_HEADERS,
                                     interactive=False, wrap=True, elem_id="kb-library",
                                     column_widths=["32%", "24%", "9%", "7%", "7%", "11%",
                                                    "10%"])
                if s.uploads_enabled:
                    files = gr.File(file_count="multiple", elem_id="kb-upload",
                                    label=f"Add PDF, TXT or MD files (at most "
                                          f"{s.max_upload_mb:g} MB each)")
                    upload_btn = gr.Button("Add to the library", variant="primary")
                    status = gr.Textbox(label="Result", lines=3, interactive=False,
                                        elem_id="kb-upload-status")
                    with gr.Row():
                        to_delete = gr.Dropdown(state.document_choices(),
                                                label="Delete a document", scale=3,
                                                allow_custom_value=True)
                        delete_btn = gr.Button("Delete", variant="stop", scale=1)
                    lib_outputs = [table, to_delete, docs, year_from, year_to]
                    upload_btn.click(state.upload, [files], [status, *lib_outputs, files],
                                     api_name="upload")
                    delete_btn.click(state.delete, [to_delete], [status, *lib_outputs],
                                     api_name="delete")
                else:
                    gr.Markdown("*This server is read-only: uploads and deletions are off.*")

            with gr.Tab("Glossary", id="glossary"):
                search = gr.Textbox(label="Search terms, aliases and definitions",
                                    elem_id="kb-glossary-search")
                glossary = gr.HTML(elem_id="kb-glossary")
                search.change(state.glossary, [search], [glossary], api_name="glossary",
                              trigger_mode="always_last")

            with gr.Tab("Course pack", id="pack"):
                gr.Markdown("For trainers: a topic in, a pack out — key concepts, key facts "
                            "quoted with citations, case excerpts, discussion questions and a "
                            "quiz. Export it to edit in Word or a Markdown editor.")
                with gr.Row():
                    topic = gr.Textbox(label="Topic", scale=4, elem_id="kb-topic",
                                       placeholder="e.g. relocation, dibao, East-West pairing")
                    pack_btn = gr.Button("Build pack", variant="primary", scale=1,
                                         elem_id="kb-pack")
                with gr.Row():
                    pack_md = gr.DownloadButton("Download Markdown", value=None,
                                                interactive=False, elem_id="kb-pack-md")
                    pack_docx = gr.DownloadButton("Download DOCX", value=None,
                                                  interactive=False, elem_id="kb-pack-docx")
                preview = gr.Markdown(elem_id="kb-pack-preview")
                pack_btn.click(state.pack, [topic], [preview, pack_md, pack_docx],
                               api_name="pack")
                topic.submit(state.pack, [topic], [preview, pack_md, pack_docx], api_name=False)

            with gr.Tab("Evaluate", id="evaluate"):  # for evaluators: gold sets, reports
                state.evaluator = evaluate_tab(  # type: ignore[attr-defined]
                    kbase, state.lock, state.exports)
        demo.load(state.glossary, [search], [glossary], api_name=False)
        # Another session may have changed the library since the page was built.
        if s.uploads_enabled:
            demo.load(lambda: state._library_updates(), None,
                      [table, to_delete, docs, year_from, year_to], api_name=False)
        else:
            demo.load(lambda: state._library_updates()[2:] + (state.document_rows(),), None,
                      [docs, year_from, year_to, table], api_name=False)
    return demo


def add_routes(demo: gr.Blocks) -> None:
    """`kb/source/{doc_id}` (the passage in context) and `kb/file/{doc_id}` (the original file)
    on the launched app, behind the same login as the page."""
    server = demo.server_app  # type: ignore[attr-defined]
    state: App = demo.policykb  # type: ignore[attr-defined]

    def require_login(request: Request) -> None:
        if server.auth is None and server.auth_dependency is None:
            return
        token = (request.cookies.get(f"access-token-{server.cookie_id}")
                 or request.cookies.get(f"access-token-unsecure-{server.cookie_id}"))
        if not server.tokens.get(token):
            raise HTTPException(status_code=401, detail="Log in first.")

    def source(doc_id: str, request: Request, start: int = 0, end: int = 0) -> HTMLResponse:
        require_login(request)
        with state.lock.read():
            document = state.kbase.catalog.documents.get(doc_id)
            text = state.kbase.catalog.texts.get(doc_id)
        if document is None or text is None:
            raise HTTPException(status_code=404, detail="No such document in the library.")
        return HTMLResponse(render.source_page(document, text, start, end))

    def original(doc_id: str, request: Request) -> FileResponse:
        require_login(request)
        document = state.kbase.catalog.documents.get(doc_id)
        if document is None:
            raise HTTPException(status_code=404, detail="No such document in the library.")
        corpus = state.settings.corpus_dir.resolve()
        path = (corpus / document.source).resolve()
        if corpus not in path.parents or not path.is_file():
            raise HTTPException(status_code=404, detail="The file is not in the corpus.")
        media = {".pdf": "application/pdf", ".md": "text/markdown; charset=utf-8"}.get(
            path.suffix.lower(), "text/plain; charset=utf-8")
        # inline: browsers show PDFs in their viewer, where #page=N works.
        return FileResponse(path, media_type=media, content_disposition_type="inline",
                            filename=path.name)

    server.add_api_route("/kb/source/{doc_id}", source, methods=["GET", "HEAD"],
                         response_class=HTMLResponse)
    server.add_api_route("/kb/file/{doc_id}", original, methods=["GET", "HEAD"])


def warm_up(kbase: KnowledgeBase) -> None:
    """Load the embedders, BM25 and corpus statistics once, before the first question."""
    t0 = time.perf_counter()
    for name in kbase.embedder_names:
        kbase.embedder(name)
    if kbase.catalog.documents:
        try:
            answer("What is targeted poverty alleviation?", kbase)
            answer("Qu'est-ce que la pauvreté ?", kbase)  # the multilingual path too
        except StoreUnavailable as exc:  # serve anyway: questions say so until it is back
            log.warning("warm-up skipped, vector store unavailable: %s", exc)
    log.info("models loaded in %.1f s", time.perf_counter() - t0)


def launch(kbase: KnowledgeBase, host: str | None = None, port: int | None = None,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Check access settings, load the models, build and launch the app (blocking unless
    `block=False`, which returns the running Blocks; call `.close()` to stop it)."""
    settings = kbase.settings
    host = host or settings.host
    port = port or settings.port
    users = load_users(settings.app)
    check_exposure(host, users, settings.app)  # raises ServeRefused before anything loads
    warm_up(kbase)
    demo = build_app(kbase)
    demo.queue(default_concurrency_limit=settings.app.concurrency_limit,
               max_size=settings.app.max_queue)
    demo.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
        auth=checker(users) if users else None,
        auth_message="policykb: log in with the account you were given." if users else None,
        css=CSS, footer_links=["api"], show_error=False,
        max_file_size=f"{settings.app.max_upload_mb:g}mb" if settings.app.uploads_enabled
        else "1mb",
        ssr_mode=False,
    )
    add_routes(demo)
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo
