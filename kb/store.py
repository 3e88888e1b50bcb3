"""The vector store: Chroma, embedded (PersistentClient under the data directory) or a server.

Embeddings are always passed explicitly (Chroma's default embedding function would download a
model). One collection per embedder, named from the model and chunking settings.

Server mode: `KB_CHROMA_URL=http://host:8000` uses the server's default database;
`http://host:8000/policykb` uses (and creates) the database `policykb`, so several knowledge
bases (or test runs) can share one server without their collections meeting.

Faults become two exceptions with a message fit for a person: `StoreUnavailable` (the server
does not answer, or the embedded store cannot be opened) and `StoreWriteError` (the store
refused a write: disk full, read-only). After either, the next call reconnects: a new client,
and the collection looked up again by name (a server restarted on a fresh path gives the
collection a new id; the old handle would fail for ever with NotFoundError).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import httpx
import numpy as np

from kb.settings import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # before chromadb is imported

import chromadb  # noqa: E402
from chromadb.config import Settings as ChromaSettings  # noqa: E402
from chromadb.errors import (  # noqa: E402
    ChromaError,
    InternalError,
    NotFoundError,
    UniqueConstraintError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# chromadb's HTTP client waits for ever by default (httpx timeout=None): a hung or unreachable
# server would hold every request thread of the app. Connect fails fast; a large upsert or a
# query gets a minute.
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# A proxy in front of Chroma answers these while the server is down or restarting.
_UNAVAILABLE_STATUS = {502, 503, 504}


class StoreUnavailable(RuntimeError):
    """The vector store cannot be reached (a Chroma server down, a store that cannot be
    opened). The message says which store and why; the next call tries again."""


class StoreWriteError(RuntimeError):
    """The vector store refused a write (disk full, read-only database)."""


def _parse_url(url: str) -> tuple[str, int, bool, str]:
    """host, port, ssl, database from `http(s)://host:port[/database]`."""
    parsed = urlparse(url)
    database = parsed.path.strip("/") or chromadb.DEFAULT_DATABASE
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    return parsed.hostname or "localhost", port, parsed.scheme == "https", database


def chroma_client(settings: Settings) -> Any:
    """A Chroma client for the settings: HttpClient when `chroma_url` is set, else embedded.
    Raises StoreUnavailable when the server does not answer or the directory cannot be opened."""
    if settings.chroma_url:
        return _http_client(settings.chroma_url)
    path = settings.data_dir / "chroma"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        )
    except (OSError, ChromaError) as exc:  # read-only or full disk: sqlite cannot open/migrate
        raise StoreUnavailable(f"embedded Chroma in {path} cannot be opened: {exc}") from exc


def _http_client(url: str) -> Any:
    host, port, ssl, database = _parse_url(url)
    # One settings object for HttpClient and AdminClient: chromadb shares one "system" per
    # host:port and refuses a second one whose settings differ.
    chroma_settings = ChromaSettings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=host,
        chroma_server_http_port=port, chroma_server_ssl_enabled=ssl,
        anonymized_telemetry=False, allow_reset=False,
    )

    def connect() -> Any:
        return chromadb.HttpClient(host=host, port=port, ssl=ssl, database=database,
                                   settings=chroma_settings)

    try:
        # chromadb's constructor talks to the server before we can set a timeout on its
        # session: a heartbeat with our timeout first, so a hung server cannot hold us there.
        scheme = "https" if ssl else "http"
        httpx.get(f"{scheme}://{host}:{port}/api/v2/heartbeat",
                  timeout=HTTP_TIMEOUT).raise_for_status()
        try:
            client = connect()
        except NotFoundError:  # first use of this database on the server
            try:
                chromadb.AdminClient(chroma_settings).create_database(database)
            except UniqueConstraintError:
                pass  # another replica created it first
            client = connect()
    # chromadb turns a refused connection into ValueError("Could not connect ...")
    except (ValueError, httpx.HTTPError) as exc:
        raise StoreUnavailable(f"Chroma server at {url} is not reachable: {_reason(exc)}") from exc
    except ChromaError as exc:  # e.g. a database name the server does not accept
        raise StoreUnavailable(f"Chroma server at {url} cannot be used: {_reason(exc)}") from exc
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):  # private in chromadb; checked, not assumed
        session.timeout = HTTP_TIMEOUT
    return client


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within the timeout ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class ChromaConnection:
    """The Chroma client of one knowledge base: made on first use, dropped after a fault, so
    the next call connects again. `where` names the store in messages."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        self.where = (f"Chroma server at {settings.chroma_url}" if settings.chroma_url
                      else f"embedded Chroma in {settings.data_dir / 'chroma'}")

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = chroma_client(self.settings)
            return self._client

    def reset(self) -> None:
        with self._lock:
            self._client = None


@dataclass
class DenseHit:
    """One stored vector (a window of a chunk) near the query."""

    chunk_id: str
    similarity: float


class VectorStore:
    """One Chroma collection of chunk vectors with the metadata that filters use."""

    PAGE = 5000  # ids listed per request
    BATCH = 1000  # Chroma caps batch sizes

    def __init__(self, connection: ChromaConnection, name: str):
        self.name = name
        self._connection = connection
        self._handle: Any = None

    def _collection(self) -> Any:
        handle = self._handle
        if handle is None:
            handle = self._connection.client().get_or_create_collection(
                name=self.name, metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
            self._handle = handle
        return handle

    def _call(self, fn: Callable[[Any], T], write: bool = False) -> T:
        """Run `fn(collection)`, turning faults into StoreUnavailable / StoreWriteError."""
        where = self._connection.where
        for attempt in range(2):
            try:
                return fn(self._collection())
            except StoreUnavailable:
                raise
            except NotFoundError:
                # The server lost the collection (restarted on a fresh path, or it was
                # deleted): look it up again by name, once, with a new client (which also
                # creates the database if that went too). An empty collection is created and
                # the next ingest refills it (its completeness check sees the vectors missing).
                self._drop()
                if attempt:
                    raise
                log.warning("%s: collection %s not found, looking it up again", where, self.name)
            except httpx.HTTPStatusError as exc:
                self._drop()
                if exc.response.status_code in _UNAVAILABLE_STATUS:
                    raise StoreUnavailable(f"{where} is not reachable: {_reason(exc)}") from exc
                raise
            except (httpx.TransportError, ConnectionError) as exc:
                self._drop()
                raise StoreUnavailable(f"{where} is not reachable: {_reason(exc)}") from exc
            except InternalError as exc:
                # "database or disk is full", "attempt to write a readonly database" (sqlite
                # under Chroma, embedded or on the server's disk)
                if write:
                    raise StoreWriteError(f"{where} refused the write: {_reason(exc)}") from exc
                raise
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        self._handle = None
        self._connection.reset()

    def count(self) -> int:
        return self._call(lambda c: int(c.count()))

    def ids(self, where: dict[str, Any] | None = None) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = self._call(
                lambda c, o=offset: c.get(where=where, include=[], limit=self.PAGE, offset=o)
            )
            out.update(got["ids"])
            if len(got["ids"]) < self.PAGE:
                return out
            offset += self.PAGE

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]
    ) -> None:
        for i in range(0, len(ids), self.BATCH):
            part = slice(i, i + self.BATCH)
            self._call(lambda c, p=part: c.upsert(
                ids=list(ids[p]), embeddings=vectors[p], metadatas=list(metadatas[p])
            ), write=True)

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        for i in range(0, len(ids), self.BATCH):
            part = slice(i, i + self.BATCH)
            self._call(lambda c, p=part: c.update(
                ids=list(ids[p]), metadatas=list(metadatas[p])
            ), write=True)

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), self.BATCH):
            self._call(lambda c, p=slice(i, i + self.BATCH): c.delete(ids=ids[p]), write=True)

    def query(
        self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[DenseHit]:
        n = self.count()
        if n == 0:
            return []
        res = self._call(lambda c: c.query(
            query_embeddings=[vector], n_results=min(k, n), where=where,
            include=["distances", "metadatas"],
        ))
        return [
            DenseHit(str(meta["chunk_id"]), 1.0 - float(dist))
            for meta, dist in zip(res["metadatas"][0], res["distances"][0], strict=True)
        ]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (missing ids are left out); the answerer scores sentences
        against the window vectors that were embedded at ingest instead of re-embedding."""
        if not ids:
            return {}
        got = self._call(lambda c: c.get(ids=list(ids), include=["embeddings"]))
        return {
            str(i): np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }
