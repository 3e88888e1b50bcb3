"""The launched app through gradio_client, as a program (or a person) would use it: ask, get a
cited answer and its sources, an abstention, a follow-up; bad uploads; the source routes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from gradio_client import Client, handle_file

from kb.answer import REFUSAL

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def client(live_app: str) -> Client:
    return Client(live_app, verbose=False)


def ask(client: Client, question: str, chat: list[Any] | None = None,
        docs: list[str] | None = None, strict: bool = False) -> tuple[Any, ...]:
    return client.predict(question, chat or [], docs or [], "any", "any", strict,
                          api_name="/ask")


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def test_ask_gives_a_cited_answer_with_sources_then_a_follow_up(client: Client) -> None:
    chat, box, sources, markdown, download = ask(client, "What are the five batches?")
    assert box == ""
    assert [m["role"] for m in chat] == ["user", "assistant"]
    reply = text_of(chat[-1])
    assert "relocation" in reply.lower() and "[1]" in reply
    assert "Chinese Poverty Alleviation Studies" in reply or "Poverty Alleviation:" in reply
    assert "<mark>" in sources and 'class="kb-sources"' in sources
    assert "kb/source/" in sources
    assert "[^1]:" in markdown
    assert download["value"].endswith(".md")

    # A follow-up: the conversation's history is used (the session keeps it).
    chat2, _, sources2, _, _ = ask(client, "And which one concerns schools?", chat)
    assert len(chat2) == 4
    follow = text_of(chat2[-1])
    assert "[1]" in follow and "education" in follow.lower(), follow[:500]


def test_unanswerable_question_abstains_and_shows_the_closest_passages(client: Client) -> None:
    chat, _, sources, markdown, _ = ask(client, "What was the poverty line in Kenya in 2019?")
    reply = text_of(chat[-1])
    assert REFUSAL in reply and "Not found in the documents" in reply
    assert "kb-abstained" in sources and "Closest passages" in sources
    assert "<mark>" in sources


def test_question_in_french_is_answered_from_english_sources(client: Client) -> None:
    chat, _, sources, _, _ = ask(client, "Combien de personnes ont été relogées ?")
    reply = text_of(chat[-1])
    assert "[1]" in reply and "English" in reply  # the note that quotes are English


def test_filter_to_one_document(client: Client) -> None:
    chat, _, sources, _, _ = ask(client, "What are the five batches?",
                                 docs=["whitepaper-2021"], strict=True)
    assert "Poverty Alleviation: China&#x27;s Experience and Contribution" in sources
    assert "Chinese Poverty Alleviation Studies" not in sources


def test_feedback_is_appended_to_the_data_directory(client: Client, real_kb) -> None:  # type: ignore[no-untyped-def]
    ask(client, "What are the five batches?")
    thanks, comment = client.predict("Clear and quotable.", api_name="/feedback_up")
    assert "recorded" in thanks and comment == ""
    path = real_kb.settings.data_dir / real_kb.settings.app.feedback_file
    entry = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["rating"] == "up" and entry["comment"] == "Clear and quotable."
    assert entry["question"] == "What are the five batches?" and entry["citations"]


def test_bad_upload_shows_the_error_and_leaves_the_library_unchanged(
    client: Client, real_kb, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    before = (set(real_kb.catalog.documents), len(real_kb.catalog.chunks),
              sorted(p.name for p in real_kb.settings.corpus_dir.iterdir()))
    fake = tmp_path / "report.pdf"
    fake.write_text("This is not a PDF.")
    status, table, *_ = client.predict([handle_file(str(fake))], api_name="/upload")
    assert "Not added: report.pdf: not a PDF" in status
    assert len(table["value"]["data"]) == len(before[0])
    after = (set(real_kb.catalog.documents), len(real_kb.catalog.chunks),
             sorted(p.name for p in real_kb.settings.corpus_dir.iterdir()))
    assert after == before


def test_glossary_and_pack_endpoints(client: Client) -> None:
    glossary = client.predict("five batches", api_name="/glossary")
    assert "Five Batches" in glossary and "Five Measures for Poverty Eradication" in glossary
    preview, md, docx = client.predict("relocation", api_name="/pack")
    assert "## Key facts" in preview and "## Quiz" in preview
    assert md["value"].endswith(".md") and docx["value"].endswith(".docx")


def test_source_routes_show_the_passage_and_refuse_unknown_documents(
    live_app: str, real_kb  # type: ignore[no-untyped-def]
) -> None:
    chunk = next(c for c in real_kb.catalog.ordered_chunks() if c.kind == "glossary")
    url = f"{live_app}kb/source/{chunk.doc_id}?start={chunk.char_start}&end={chunk.char_end}"
    page = urllib.request.urlopen(url, timeout=30).read().decode()
    assert '<mark id="kb-hl">' in page and chunk.text[:40] in page
    for bad in ("kb/source/no-such-doc", "kb/file/no-such-doc", "kb/file/..%2F..%2Fetc"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(live_app + bad, timeout=30)
        assert info.value.code == 404
    raw = urllib.request.urlopen(f"{live_app}kb/file/{chunk.doc_id}", timeout=30)
    assert raw.headers["content-type"].startswith("text/plain")
