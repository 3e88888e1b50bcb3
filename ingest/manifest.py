"""Read `corpus/manifest.toml`: one table per file name, describing that file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ingest.records import DocMeta, IngestError

MANIFEST_NAME = "manifest.toml"
_FIELDS = ("doc_id", "title", "publisher", "published", "kind", "language")


def load_manifest(corpus_dir: Path) -> dict[str, DocMeta]:
    """Metadata per file name; {} when the corpus has no manifest.

    >>> load_manifest(Path("corpus"))["001_699e285056daa501.txt"].doc_id  # doctest: +SKIP
    'whitepaper-2021'
    """
    path = Path(corpus_dir) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(MANIFEST_NAME, f"malformed manifest: {exc}") from exc
    metas: dict[str, DocMeta] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise IngestError(MANIFEST_NAME, f"malformed manifest: entry {name!r} is not a table")
        values: dict[str, str | None] = {}
        for key in _FIELDS:
            value = table.get(key)
            if value is not None and not isinstance(value, str | int):
                raise IngestError(
                    MANIFEST_NAME, f"malformed manifest: {name!r}.{key} must be a string"
                )
            values[key] = str(value).strip() if value is not None else None
        metas[name] = DocMeta(source=name, **values)
    return metas
