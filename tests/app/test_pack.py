"""Course packs: the library function, the Markdown/DOCX exports and `kb pack`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from docx import Document as read_docx

from app.cli import cli
from app.export import pack_markdown, write_pack
from kb.pack import BLANK, build_pack

TOPIC = "relocation"


@pytest.fixture
def pack(small_kb):  # type: ignore[no-untyped-def]
    return build_pack(TOPIC, small_kb)


def test_pack_quotes_are_exact_cited_spans(pack, small_kb) -> None:  # type: ignore[no-untyped-def]
    assert pack.facts, pack.notes
    assert len(pack.facts) <= 10
    numbers = [c.n for c in pack.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    for fact in pack.facts:
        c = pack.citation(fact.n)
        assert fact.quote == c.quote
        # The document offsets point at the same words in the cleaned document text.
        assert small_kb.catalog.texts[c.chunk.doc_id][c.doc_start:c.doc_end] == c.quote
    for concept in pack.concepts:
        c = pack.citation(concept.n)
        assert c.chunk.kind == "glossary" and concept.definition.strip() in c.chunk.text
    for item in pack.quiz:
        source = pack.citation(item.n).quote
        assert BLANK in item.prompt and item.answer in source
        assert item.prompt.replace(BLANK, item.answer) == source
    assert pack.discussion and all(q.endswith("?") for q in pack.discussion)


def test_pack_on_an_unknown_topic_says_the_documents_do_not_say(small_kb) -> None:
    empty = build_pack("quantum chromodynamics of zebras", small_kb)
    assert empty.empty and not empty.quiz
    assert "do not say" in empty.notes[0]
    assert "do not say" in pack_markdown(empty)


def test_markdown_export_has_sections_and_footnotes(pack) -> None:  # type: ignore[no-untyped-def]
    md = pack_markdown(pack)
    assert md.startswith(f"# Course pack: {TOPIC}")
    for heading in ("## Key facts", "## Discussion questions", "## Sources"):
        assert heading in md
    used = set(re.findall(r"\[\^(\d+)\](?!:)", md))
    defined = set(re.findall(r"^\[\^(\d+)\]:", md, re.M))
    assert used and used == defined
    first = pack.citation(1)
    line = next(x for x in md.splitlines() if x.startswith("[^1]:"))
    assert first.document.title[:20] in line
    if first.chunk.section:
        assert first.chunk.section.split(" > ")[-1][:15] in line


def test_docx_export(pack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_pack(pack, tmp_path / "pack.docx")
    doc = read_docx(str(path))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert f"Course pack: {TOPIC}" in text and "Sources" in text
    assert pack.facts[0].quote[:40] in text
    superscripts = [r for p in doc.paragraphs for r in p.runs if r.font.superscript]
    assert superscripts and superscripts[0].text.startswith("[")
    with pytest.raises(ValueError):
        write_pack(pack, tmp_path / "pack.pdf")


def test_kb_pack_command_writes_md_and_docx(small_kb, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app import cli as cli_module

    # The command opens the knowledge base of its settings; hand it the fake-embedder one.
    monkeypatch.setattr(cli_module, "_kbase", lambda ctx: small_kb)
    runner = CliRunner()
    for name in ("relocation.md", "relocation.docx"):
        out = tmp_path / name
        result = runner.invoke(cli, ["pack", TOPIC, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.is_file() and out.stat().st_size > 500
    assert (tmp_path / "relocation.md").read_text().startswith("# Course pack: relocation")
    printed = runner.invoke(cli, ["pack", TOPIC])
    assert "## Key facts" in printed.output
    bad = runner.invoke(cli, ["pack", TOPIC, "--out", str(tmp_path / "x.pdf")])
    assert bad.exit_code != 0 and ".md or .docx" in bad.output
    nothing = runner.invoke(cli, ["pack", "zebra chromodynamics"])
    assert nothing.exit_code == 1 and "do not say" in nothing.output
