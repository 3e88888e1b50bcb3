"""A tiny gold set over the seed excerpts of tests/data (plus the hostile note the app tests add),
for eval-suite tests on a knowledge base built with the fake embedders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
HOSTILE_NOTE = (
    "# Field notes <script>alert('x')</script>\n\n"
    "The county relocated 120 households to the <b>new town</b> in 2019, and 40 of them now "
    "work in the workshop.\n"
)
HOSTILE_QUESTION = "<script>alert('gold')</script> How many households did the county relocate?"

TINY_GOLD = [
    {"id": "g1", "question": "What are the five batches?", "answerable": True,
     "key_facts": ["relocation", "ecological compensation", "allowances | subsidies"],
     "evidence": [{"doc": "seed000_glossary.txt",
                   "quote": 'The "five batches" refer to lifting some people out of poverty by '
                            "expanding production to increase employment"}],
     "type": "glossary"},
    {"id": "g2", "question": "What do the Two Assurances and Three Guarantees cover?",
     "answerable": True, "key_facts": ["compulsory education", "safe housing"],
     "evidence": [{"doc": "seed001_bracket_note.txt",
                   "quote": "guarantees of access to compulsory education, basic medical "
                            "services and safe housing"}],
     "type": "definition"},
    {"id": "g3", "question": HOSTILE_QUESTION, "answerable": True,
     "key_facts": ["120 households"],
     "evidence": [{"doc": "hostile_notes.md", "quote": "The county relocated 120 households"}],
     "type": "fact-number"},
    {"id": "g4", "question": "What was the poverty line in Kenya in 2019?", "answerable": False,
     "key_facts": [], "evidence": [], "type": "unanswerable"},
]


def write_gold(path: Path, bad_line_after: int | None = None) -> Path:
    """TINY_GOLD as JSONL; with `bad_line_after`, a line missing 'question' is inserted there."""
    lines = [json.dumps(obj) for obj in TINY_GOLD]
    if bad_line_after is not None:
        lines.insert(bad_line_after, json.dumps({"id": "broken", "answerable": True}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fill_corpus(corpus: Path) -> None:
    """The seed excerpts and the hostile note, into a corpus directory."""
    for path in DATA.glob("seed*.txt"):
        shutil.copy(path, corpus / path.name)
    (corpus / "hostile_notes.md").write_text(HOSTILE_NOTE, encoding="utf-8")
