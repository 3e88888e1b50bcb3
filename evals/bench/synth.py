"""A synthetic corpus N times the seeds, for benchmarks: the seeds' own text, re-issued.

Copy 0 of each seed is the seed itself (same file name and manifest entry, so the gold sets
still point at it). Copies 1..N-1 get their own file name, doc_id, title, publication date and
an order of top-level sections shuffled after the front matter (title page, contents), with a
manifest entry each, as `corpus/manifest.toml` gives the seeds. Everything is deterministic
from `seed`.

The text itself is repeated, so an ingest with the embedding cache embeds each distinct window
once: the benchmark says so and extrapolates what unique text would cost from the measured
embedding floor.

    >>> info = make_corpus(Path("corpus"), Path("/tmp/c100"), scale=100)
    >>> info.files, round(info.bytes / 1e6, 1)   # (500, 48.8)
"""

from __future__ import annotations

import random
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import IngestSettings
from ingest.manifest import MANIFEST_NAME, load_manifest
from ingest.pipeline import parse_file
from ingest.records import DocMeta

DATA_FILES = ("aliases.toml", "lexicon.toml")  # corpus data that retrieval reads
_LEADERS = re.compile(r"(?:\.{3,}|…|\t\s*\d+\s*$)")


@dataclass
class CorpusInfo:
    directory: Path
    files: int = 0
    bytes: int = 0
    seeds: int = 0
    shuffled: dict[str, int] = field(default_factory=dict)  # seed file -> sections it shuffles


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def section_segments(raw: str, titles: list[str]) -> list[str]:
    """Split a seed's raw text at the lines where its top-level sections start.

    `titles` are the section headings the parser found, in document order. A heading is found
    as the first line (or two lines: "1. Chinese Poverty Alleviation / Studies Takes Shape")
    after the previous one whose letters and digits begin the title, skipping table-of-contents
    lines (leader dots, page numbers). Titles not found are left inside the segment before.
    The first segment holds the front matter and always stays first.
    """
    lines = raw.split("\n")
    starts: list[int] = []
    pos = 0
    for title in titles:
        target = _norm(title)
        if len(target) < 4:
            continue
        for i in range(pos, len(lines)):
            line = lines[i]
            if _LEADERS.search(line):
                continue
            here = _norm(line)
            if len(here) < 4:
                continue
            two = here + (_norm(lines[i + 1]) if i + 1 < len(lines) else "")
            if target.startswith(here) and (here == target or two.startswith(target)
                                             or len(here) >= min(len(target), 24)):
                if i > 0:
                    starts.append(i)
                pos = i + 1
                break
    bounds = [0, *starts, len(lines)]
    return ["\n".join(lines[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def top_sections(path: Path, meta: DocMeta | None) -> list[str]:
    """Top-level section headings of a seed, in the order of their text."""
    parsed = parse_file(path, meta, IngestSettings())
    first: dict[str, int] = {}
    for chunk in parsed.chunks:
        top = chunk.section.split(" > ", 1)[0] if chunk.section else ""
        if top and (top not in first or chunk.char_start < first[top]):
            first[top] = chunk.char_start
    return sorted(first, key=first.__getitem__)


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_corpus(seed_dir: Path, out_dir: Path, scale: int, seed: int = 0) -> CorpusInfo:
    """Write `scale` copies of every seed (copy 0 = the seed) and their manifest to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(seed_dir)
    rng = random.Random(seed)
    info = CorpusInfo(out_dir)
    entries: list[str] = ["# Synthetic benchmark corpus (evals/bench/synth.py); copy 0 = seed.\n"]
    seeds = sorted(p for p in seed_dir.iterdir()
                   if p.is_file() and p.suffix in (".txt", ".md", ".pdf")
                   and p.name != MANIFEST_NAME and p.name not in DATA_FILES)
    info.seeds = len(seeds)
    for name in DATA_FILES:
        if (seed_dir / name).exists():
            shutil.copyfile(seed_dir / name, out_dir / name)
    for path in seeds:
        meta = manifest.get(path.name) or DocMeta(source=path.name)
        raw = path.read_text(encoding="utf-8")
        segments = section_segments(raw, top_sections(path, meta))
        info.shuffled[path.name] = max(0, len(segments) - 1)
        base_id = meta.doc_id or re.sub(r"[^a-z0-9]+", "-", path.stem.lower())
        for k in range(scale):
            if k == 0:
                name, text, entry = path.name, raw, meta
            else:
                body = segments[1:]
                rng.shuffle(body)
                text = "\n".join([segments[0], *body])
                name = f"{path.stem}-copy{k:03d}{path.suffix}"
                year = 2015 + rng.randrange(11)
                entry = DocMeta(
                    source=name,
                    doc_id=f"{base_id}-copy{k:03d}",
                    title=f"{meta.title or path.stem} (edition {k})",
                    publisher=meta.publisher,
                    published=f"{year}-{rng.randrange(1, 13):02d}",
                    kind=meta.kind,
                    language=meta.language,
                )
            (out_dir / name).write_text(text, encoding="utf-8")
            info.files += 1
            info.bytes += len(text.encode("utf-8"))
            fields = [f"{key} = {_toml(str(value))}" for key, value in (
                ("doc_id", entry.doc_id), ("title", entry.title), ("publisher", entry.publisher),
                ("published", entry.published), ("kind", entry.kind),
                ("language", entry.language)) if value]
            entries.append(f"[{_toml(name)}]\n" + "\n".join(fields) + "\n")
    (out_dir / MANIFEST_NAME).write_text("\n".join(entries), encoding="utf-8")
    tomllib.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))  # fail here, not later
    return info


def change_files(corpus_dir: Path, fraction: float, seed: int = 1) -> list[str]:
    """Edit `fraction` of the synthetic copies (never a seed) the way a revised edition would
    be: a dated revision sentence closes every third paragraph, so the windows that hold those
    sentences really need embedding again. Returns the changed file names."""
    rng = random.Random(seed)
    copies = sorted(p for p in corpus_dir.iterdir() if "-copy" in p.name)
    n = max(1, round(len(copies) * fraction))
    changed = sorted(rng.sample(copies, min(n, len(copies))))
    for path in changed:
        paragraphs = path.read_text(encoding="utf-8").split("\n\n")
        for i in range(0, len(paragraphs), 3):
            para = paragraphs[i].rstrip()
            if para.endswith((".", "!", "?")) and len(para.split()) >= 20:
                paragraphs[i] = (f"{para} This paragraph was revised in edition "
                                 f"{rng.randrange(2, 9)} of {2020 + rng.randrange(6)}.")
        path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return [p.name for p in changed]
