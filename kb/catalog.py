"""The chunk table: every ingested document, its cleaned text and chunks, on disk as JSON.

It is the source of truth for what is in the index: a dense hit whose id is not here (left by
an interrupted ingest) is ignored, and the next ingest deletes it. One file per document, written
atomically, plus `registry.json` naming each document's file, content hash and chunking.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ingest.records import Chunk, Document


def write_atomic(path: Path, data: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the registry knows of one ingested document."""

    doc_id: str
    source: str
    fingerprint: str  # hash of raw bytes + manifest metadata + chunking settings
    chunks: int


class Catalog:
    """Documents and chunks of one index, loaded into memory (cheap: text only, no vectors)."""

    def __init__(self, root: Path):
        self.root = root
        self.registry: dict[str, Entry] = {}
        self.documents: dict[str, Document] = {}
        self.texts: dict[str, str] = {}
        self.chunks: dict[str, Chunk] = {}
        self._by_doc: dict[str, list[str]] = {}
        self._load()

    @property
    def registry_path(self) -> Path:
        return self.root / "registry.json"

    def _doc_path(self, doc_id: str) -> Path:
        return self.root / "docs" / f"{doc_id}.json"

    def _load(self) -> None:
        if not self.registry_path.exists():
            return
        raw = json.loads(self.registry_path.read_text(encoding="utf-8"))
        for doc_id, fields in raw.items():
            path = self._doc_path(doc_id)
            if not path.exists():  # registry is written last, so this means a damaged index
                continue
            self.registry[doc_id] = Entry(**fields)
            self._load_doc(json.loads(path.read_text(encoding="utf-8")))

    def _load_doc(self, payload: dict[str, Any]) -> None:
        document = Document(**payload["document"])
        self.documents[document.doc_id] = document
        self.texts[document.doc_id] = payload["text"]
        ids = []
        for fields in payload["chunks"]:
            chunk = Chunk(**fields)
            self.chunks[chunk.chunk_id] = chunk
            ids.append(chunk.chunk_id)
        self._by_doc[document.doc_id] = ids

    def chunk_ids(self, doc_id: str) -> list[str]:
        return list(self._by_doc.get(doc_id, []))

    def ordered_chunks(self) -> list[Chunk]:
        """All chunks in a stable order (document id, then position in the document)."""
        return [self.chunks[c] for d in sorted(self._by_doc) for c in self._by_doc[d]]

    def put(self, entry: Entry, document: Document, text: str, chunks: Iterable[Chunk]) -> None:
        """Store one document (its file first, then the registry that points at it)."""
        self._drop(entry.doc_id)
        chunks = list(chunks)
        payload = {
            "document": dataclasses.asdict(document),
            "text": text,
            "chunks": [dataclasses.asdict(c) for c in chunks],
        }
        write_atomic(self._doc_path(entry.doc_id), json.dumps(payload, ensure_ascii=False))
        self._load_doc(payload)
        self.registry[entry.doc_id] = entry
        self._save_registry()

    def remove(self, doc_id: str) -> None:
        self._drop(doc_id)
        self.registry.pop(doc_id, None)
        self._save_registry()
        self._doc_path(doc_id).unlink(missing_ok=True)

    def _drop(self, doc_id: str) -> None:
        for chunk_id in self._by_doc.pop(doc_id, []):
            self.chunks.pop(chunk_id, None)
        self.documents.pop(doc_id, None)
        self.texts.pop(doc_id, None)

    def _save_registry(self) -> None:
        data = {d: dataclasses.asdict(e) for d, e in sorted(self.registry.items())}
        write_atomic(self.registry_path, json.dumps(data, indent=1, ensure_ascii=False))

    def state_hash(self) -> str:
        """Changes whenever any document's content or chunking changes (stamps the BM25 index)."""
        import hashlib

        joined = "|".join(f"{d}:{e.fingerprint}" for d, e in sorted(self.registry.items()))
        return hashlib.md5(joined.encode()).hexdigest()
