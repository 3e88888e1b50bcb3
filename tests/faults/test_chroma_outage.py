"""The Chroma server stops (or hangs) while the app runs: a clear message, no crash, and
answers again once it is back, without restarting the app. Also an app started while the
server is down, and the command line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kb import index as index_module
from kb import store as store_module
from kb.answer import answer
from kb.index import KnowledgeBase
from kb.indexer import ingest
from kb.retriever import retrieve
from kb.settings import Settings
from kb.store import StoreUnavailable
from tests.chroma_server import ChromaServer
from tests.kb.test_indexer import write_corpus

QUESTION = "How many people did the relocation programme move?"
T = TypeVar("T")


def without_hanging(fn: Callable[[], T], limit: float = 30.0) -> T:
    """fn() in a thread: its result or exception, or a failure (not a hung test run) if it is
    still waiting after `limit` seconds; the store's timeout is 1 s here."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"still waiting after {limit} s: a hung server is not timed out"
    if "error" in out:
        raise out["error"]
    return out["value"]


def chat_reply(app: Any, question: str) -> str:
    """What the chat shows after the web handler has finished with `question`."""
    updates = list(app.respond(question, [], [], None, None, None, False))
    return str(updates[-1][0][-1]["content"])


@pytest.mark.integration
def test_server_stopped_then_restarted(
    tmp_path: Path, fake_embedders: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import cli as cli_module
    from app.web import App, warm_up

    # a hung server must not hold a request for the default minute
    monkeypatch.setattr(store_module, "HTTP_TIMEOUT", httpx.Timeout(1.0))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus)
    with ChromaServer(tmp_path / "chroma") as server:
        url = f"{server.url}/policykb"
        kbase = KnowledgeBase(Settings(data_dir=tmp_path / "data", corpus_dir=corpus,
                                       chroma_url=url), embedders=fake_embedders)
        assert ingest(kbase, progress=False).ok
        app = App(kbase)
        first = answer(QUESTION, kbase)
        assert "9.6 million" in first.text
        assert "9.6 million" in chat_reply(app, QUESTION)

        server.stop()
        with pytest.raises(StoreUnavailable) as down:
            answer(QUESTION, kbase)
        message = str(down.value)
        assert url in message and "not reachable" in message and "Traceback" not in message
        with pytest.raises(StoreUnavailable):
            retrieve(QUESTION, kbase)
        reply = chat_reply(app, QUESTION)  # the web handler shows it; nothing raises
        assert "cannot be searched right now" in reply and "ask again" in reply
        assert url not in reply  # the detail goes to the log
        report = ingest(kbase, progress=False)
        assert [e.source for e in report.errors] == [url]
        assert "not reachable" in report.errors[0].reason
        # an app process started while the server is down: the warm-up does not crash it
        late = KnowledgeBase(kbase.settings, embedders=fake_embedders)
        warm_up(late)
        late_app = App(late)
        assert "cannot be searched right now" in chat_reply(late_app, QUESTION)
        # the command line: one line on stderr, exit status 1, no traceback
        monkeypatch.setenv("KB_CHROMA_URL", url)
        monkeypatch.setattr(index_module, "get_embedder", lambda name, batch_size=32:
                            fake_embedders[name])
        with pytest.raises(SystemExit) as exit_info:
            cli_module.main(["--data-dir", str(kbase.settings.data_dir), "--corpus-dir",
                             str(corpus), "ask", QUESTION])
        assert exit_info.value.code == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"error: Chroma server at {url} is not reachable"), err

        server.start()  # same port, same path: the apps reconnect by themselves
        assert answer(QUESTION, kbase).text == first.text
        assert "9.6 million" in chat_reply(app, QUESTION)
        assert "9.6 million" in chat_reply(late_app, QUESTION)

        server.pause()  # hung: connections are accepted, nothing answers
        try:
            with pytest.raises(StoreUnavailable, match="timeout"):
                without_hanging(lambda: retrieve(QUESTION, kbase))
            assert "cannot be searched right now" in without_hanging(
                lambda: chat_reply(app, QUESTION))
        finally:
            server.resume()
        assert answer(QUESTION, kbase).text == first.text
