"""The Library and Glossary tabs' logic: uploads checked by content, deletion, glossary index.

    >>> result = add_uploads(kbase, [Path("/tmp/gradio/.../report.pdf")], lock)
    >>> result.errors          # [("report.pdf", "not a PDF: ...")], nothing ingested for it

No Gradio here; app/web.py wires these into the page.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ingest.records import Chunk, Document
from kb.aliases import ALIASES_FILE, phrase_key
from kb.index import KnowledgeBase
from kb.indexer import ingest, remove_document
from kb.lexical import tokenize

ALLOWED = {".pdf": "PDF", ".txt": "text", ".md": "Markdown"}
RESERVED = {"manifest.toml", ALIASES_FILE}

log = logging.getLogger(__name__)
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class ReadWriteLock:
    """Many answers at once, or one ingest/delete alone: an index being rewritten is never
    read half-way (the catalog's dictionaries change during an ingest)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._readers:
                self._cond.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class UploadError(ValueError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def safe_name(name: str) -> str:
    """A file name that stays inside the corpus directory: no folders, no leading dot, only
    letters, digits, '.', '-', '_' and spaces (others become '_'), at most 120 characters.

    >>> safe_name("../../etc/passwd.txt")
    'passwd.txt'
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFKD", base).replace("\x00", "")
    base = "".join(ch for ch in base if not unicodedata.combining(ch))  # é -> e
    base = re.sub(r"[^\w.\- ]", "_", base, flags=re.ASCII).strip(" .")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = stem[: 120 - len(ext) - 1].strip(" ._") or "upload"
    return f"{stem}.{ext.lower()}" if ext else stem


def sniff(head: bytes) -> str:
    """What the bytes are, whatever the name says: "pdf", "text" or a description of binary."""
    if head.lstrip()[:5] == b"%PDF-" or b"%PDF-" in head[:1024]:
        return "pdf"
    for magic, what in ((b"PK\x03\x04", "a ZIP archive (DOCX, XLSX, ...)"),
                        (b"\xd0\xcf\x11\xe0", "an old Office document"),
                        (b"\x7fELF", "a program"), (b"MZ", "a Windows program"),
                        (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                        (b"GIF8", "a GIF image"), (b"\x1f\x8b", "a gzip archive")):
        if head.startswith(magic):
            return what
    if b"\x00" in head:
        return "binary data"
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if head and controls / len(head) > 0.05:
        return "binary data"
    return "text"


def check_name(name: str) -> None:
    """Refuse a name that is not a plain file name: a browser sends only the file's own name,
    so folders, control characters or a leading dot mean a hostile or broken client. (Names
    that pass are still sanitised by `safe_name`.)"""
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in name):
        # NUL ends a name in C; bidi overrides show "report\u202efdp.exe" as "reportexe.pdf".
        raise UploadError(name, "the file name contains control or text-direction characters")
    if "/" in name or "\\" in name:
        raise UploadError(name, "the file name contains a folder path ('/' or '\\'); "
                                "upload the file itself")
    if not name.strip(" ."):
        raise UploadError(name, "the file has no name")
    if name.lstrip().startswith("."):
        raise UploadError(name, "hidden file names (starting with '.') are not accepted")


def check_upload(path: Path, name: str, max_mb: float) -> str:
    """The sanitised corpus name for an uploaded file, or UploadError with the reason."""
    check_name(name)
    clean = safe_name(name)
    ext = Path(clean).suffix.lower()
    if ext not in ALLOWED or clean in RESERVED:
        raise UploadError(name, f"unsupported file type {ext or '(none)'!r}: upload PDF, TXT "
                                "or MD files")
    size = path.stat().st_size
    if size == 0:
        raise UploadError(name, "empty file")
    if size > max_mb * 1024 * 1024:
        raise UploadError(name, f"file too large: {size / 1024 / 1024:.1f} MB > limit "
                                f"{max_mb:g} MB")
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    kind = sniff(head)
    if ext == ".pdf" and kind != "pdf":
        raise UploadError(name, f"not a PDF: the content is {kind}, not a PDF file")
    if ext in (".txt", ".md") and kind != "text":
        what = "a PDF" if kind == "pdf" else kind
        raise UploadError(name, f"not a text file: the content is {what} (rename a PDF to "
                                ".pdf)" if kind == "pdf" else f"not a text file: the content "
                                f"is {what}")
    return clean


@dataclass
class UploadResult:
    added: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def message(self) -> str:
        # Words, not emoji: they read the same without an emoji font or a screen.
        lines = [f"Added: {name}" for name in self.added]
        lines += [f"Not added: {name}: {reason}" for name, reason in self.errors]
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines) or "No files given."


def add_uploads(
    kbase: KnowledgeBase, uploads: Sequence[tuple[Path, str]], lock: ReadWriteLock,
    max_mb: float, on_file: Callable[[str, int, int], None] | None = None,
) -> UploadResult:
    """Check and ingest uploaded files ((temporary path, name given by the user) pairs).

    A file that fails a check or cannot be ingested leaves the corpus and the index as they
    were; the others are still added.
    """
    result = UploadResult()
    corpus = kbase.settings.corpus_dir
    corpus.mkdir(parents=True, exist_ok=True)
    for i, (path, name) in enumerate(uploads):
        if on_file:
            on_file(name, i, len(uploads))
        try:
            clean = check_upload(Path(path), name, max_mb)
        except UploadError as exc:
            # %r: a name may hold newlines or escapes meant to forge log lines.
            log.warning("upload refused: %r: %s", exc.name, exc.reason)
            result.errors.append((exc.name, exc.reason))
            continue
        target = corpus / clean
        if target.exists() or any(d.source == clean for d in kbase.documents()):
            log.warning("upload refused: %r: %r is already in the library", name, clean)
            result.errors.append((name, f"a document named {clean!r} is already in the library; "
                                        "delete it first to replace it"))
            continue
        tmp = corpus / f".upload-{os.getpid()}-{threading.get_ident()}-{clean}"
        shutil.copyfile(path, tmp)
        with lock.write():
            os.replace(tmp, target)
            warnings: list[str] = []
            try:
                report = ingest(kbase, [target], progress=False)
                own = [err.reason for err in report.errors if err.source == clean]
                other = [f"{err.source}: {err.reason}" for err in report.errors
                         if err.source != clean]
                warnings = list(report.warnings)
            except Exception as exc:  # noqa: BLE001 - a per-file message, not a crash
                own, other = [f"could not be ingested ({type(exc).__name__}: {exc})"], []
            if _ingested(kbase, clean):
                log.info("upload added: %r as %r", name, clean)
                result.added.append(clean if clean == name else f"{clean} (uploaded as {name})")
                result.warnings.extend(warnings + other)
            else:
                target.unlink(missing_ok=True)  # a failed file does not stay in the corpus
                reason = "; ".join(own or other or ["could not be ingested"])
                log.warning("upload refused: %r: %s", name, reason)
                result.errors.append((name, reason))
    return result


def _ingested(kbase: KnowledgeBase, source: str) -> bool:
    return any(d.source == source for d in kbase.documents())


def delete_document(kbase: KnowledgeBase, doc_id: str, lock: ReadWriteLock) -> Document:
    """Remove a document's chunks from both indexes and its file from the corpus."""
    with lock.write():
        if doc_id not in kbase.catalog.documents:
            raise KeyError(f"no document {doc_id!r} in the library")
        return remove_document(kbase, doc_id)


# --- Glossary -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Mention:
    document: Document
    chunks: tuple[Chunk, ...]  # passages that use the term or one of its aliases


@dataclass(frozen=True)
class GlossaryEntry:
    term: str
    aliases: tuple[str, ...]
    chunk: Chunk | None  # the glossary definition (None for a curated alias group only)
    document: Document | None
    mentions: tuple[Mention, ...]

    @property
    def definition(self) -> str:
        if self.chunk is None:
            return ""
        text = self.chunk.text
        head = f"{self.term}:"
        return text[len(head):].strip() if text.startswith(head) else text

    def matches(self, query: str) -> bool:
        q = query.strip().lower()
        return not q or any(q in s.lower() for s in (self.term, self.definition, *self.aliases))


_GLOSSARY_CACHE: dict[int, tuple[str, list[GlossaryEntry]]] = {}
_GLOSSARY_LOCK = threading.Lock()


def glossary_entries(kbase: KnowledgeBase) -> list[GlossaryEntry]:
    """Every glossary term (with its aliases, definition and where else it is used), then the
    curated alias groups that no glossary defines. Cached per catalog state."""
    with _GLOSSARY_LOCK:
        stamp = kbase.catalog.state_hash()
        cached = _GLOSSARY_CACHE.get(id(kbase))
        if cached and cached[0] == stamp:
            return cached[1]
        entries = _build_glossary(kbase)
        _GLOSSARY_CACHE[id(kbase)] = (stamp, entries)
        return entries


def _build_glossary(kbase: KnowledgeBase) -> list[GlossaryEntry]:
    table = kbase.aliases()
    chunks = kbase.catalog.ordered_chunks()
    # first token -> (chunk index, position), so each name is looked up, not scanned for.
    positions: dict[str, list[tuple[int, int]]] = {}
    tokens = [tokenize(c.text) for c in chunks]
    for ci, toks in enumerate(tokens):
        for pos, tok in enumerate(toks):
            positions.setdefault(tok, []).append((ci, pos))

    def mentions(names: Sequence[str], skip: str | None) -> tuple[Mention, ...]:
        found: dict[int, None] = {}
        for name in names:
            key = phrase_key(name)
            if not key:
                continue
            for ci, pos in positions.get(key[0], []):
                if tuple(tokens[ci][pos : pos + len(key)]) == key:
                    found[ci] = None
        by_doc: dict[str, list[Chunk]] = {}
        for ci in sorted(found):
            if chunks[ci].chunk_id != skip:
                by_doc.setdefault(chunks[ci].doc_id, []).append(chunks[ci])
        return tuple(
            Mention(kbase.document(doc_id), tuple(cs)) for doc_id, cs in sorted(by_doc.items())
        )

    entries: list[GlossaryEntry] = []
    defined: set[int] = set()
    for chunk in chunks:
        if chunk.kind != "glossary" or not chunk.title:
            continue
        groups = table.matches(chunk.title)
        defined.update(id(g) for g in groups)
        names = tuple(dict.fromkeys(n for g in groups for n in g.names))
        aliases = tuple(n for n in names if n.lower() != chunk.title.lower())
        entries.append(GlossaryEntry(chunk.title, aliases, chunk, kbase.document(chunk.doc_id),
                                     mentions((chunk.title, *aliases), chunk.chunk_id)))
    for group in table.groups:
        if id(group) in defined:
            continue
        entries.append(GlossaryEntry(group.concept, tuple(n for n in group.names
                                                          if n != group.concept),
                                     None, None, mentions(group.names, None)))
    entries.sort(key=lambda g: (g.chunk is None, g.term.lower()))
    return entries
