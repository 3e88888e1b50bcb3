"""A corpus of malformed PDFs made by the tests (tests/hostile/malformed.py): truncated, wrong
xref, encrypted, 10,000 empty pages, a 10000x10000 image, a zip bomb in a content stream, a
large content stream, one stream drawn on 2,000 pages, random bytes after a %PDF header.

Each is either ingested or refused with a one-line reason naming the file, quickly and in
bounded memory; the well-formed files beside them still ingest; `kb ingest` exits 1 when a file
was refused (README: "the exit status is non-zero").
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import cli
from ingest.config import IngestSettings
from ingest.pipeline import parse_file
from ingest.records import IngestError
from kb.indexer import IngestReport
from tests.hostile.malformed import CASES, MEMORY_LIMIT, Case, good_files, run_ingest


@pytest.fixture(scope="module")
def made() -> dict[str, bytes]:
    """Each malformed file's bytes, made once (the bombs take a second or two to deflate)."""
    return {case.name: case.make() for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_malformed_pdf_is_ingested_or_refused_with_its_reason(
    tmp_path: Path, made: dict[str, bytes], case: Case
) -> None:
    path = tmp_path / case.name
    path.write_bytes(made[case.name])
    if case.ingested:
        parsed = parse_file(path, None, IngestSettings())
        assert parsed.chunks and "120 households" in parsed.text
        return
    with pytest.raises(IngestError) as info:
        parse_file(path, None, IngestSettings())
    assert info.value.source == case.name
    assert info.value.reason.startswith(case.reason), info.value.reason
    assert "\n" not in str(info.value)


def test_the_page_content_limits_are_settings(tmp_path: Path) -> None:
    from tests.hostile.malformed import content_bomb_pdf

    path = tmp_path / "dense.pdf"
    path.write_bytes(content_bomb_pdf(200_000))  # one page, 0.2 MB of text operators
    assert "poverty alleviation" in parse_file(path, None, IngestSettings()).text
    with pytest.raises(IngestError, match="page 1: content of 0.2 MB skipped"):
        parse_file(path, None, IngestSettings(max_page_content_mb=0.1))
    with pytest.raises(IngestError, match="PDF page content too large: over 0.1 MB"):
        parse_file(path, None, IngestSettings(max_pdf_content_mb=0.1))


@pytest.mark.integration
def test_kb_ingest_over_the_malformed_corpus(tmp_path: Path, made: dict[str, bytes]) -> None:
    """One `kb ingest --json` child (real e5 embedder) over all of them plus good files, under
    an address-space limit; the run's peak RSS is checked too."""
    good = good_files()
    run = run_ingest(tmp_path / "run", {**made, **good})
    assert run.report is not None, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert run.returncode == 1
    errors = {e["source"]: e["reason"] for e in run.report["errors"]}
    refused = {c.name: c.reason for c in CASES if not c.ingested}
    assert set(errors) == set(refused)
    for name, reason in errors.items():
        assert reason.startswith(refused[name]) and "\n" not in reason
    assert set(run.report["added"]) == set(good) | {c.name for c in CASES if c.ingested}
    assert run.max_rss_mb < MEMORY_LIMIT / 1024**2 / 3  # far under the limit: ~0.3 GB


def test_kb_ingest_prints_one_line_per_refused_file(tmp_path: Path, made: dict[str, bytes],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("truncated.pdf", "encrypted.pdf", "random_bytes.pdf"):
        (corpus / name).write_bytes(made[name])
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KB_CORPUS_DIR", str(corpus))
    for args in (["ingest", "--quiet"], ["ingest", "--json"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert not result.exception or isinstance(result.exception, SystemExit)
    human = CliRunner().invoke(cli, ["ingest", "--quiet"])
    lines = [ln for ln in human.stderr.splitlines() if ln.startswith("error: ")]
    assert lines == [
        "error: encrypted.pdf: encrypted PDF; decrypt it first",
        "error: random_bytes.pdf: not a readable PDF: Stream has ended unexpectedly",
        "error: truncated.pdf: not a readable PDF: Stream has ended unexpectedly",
    ]
    report = json.loads(CliRunner().invoke(cli, ["ingest", "--json"]).stdout)
    assert {e["source"] for e in report["errors"]} == {"encrypted.pdf", "random_bytes.pdf",
                                                        "truncated.pdf"}


def test_an_ingest_error_survives_copy_and_pickle() -> None:
    """`kb ingest --json` crashed with a TypeError whenever a file failed: the report's
    dataclasses.asdict deep-copies its IngestErrors, which could not be rebuilt from args."""
    error = IngestError("bad.pdf", "not a readable PDF: no pages")
    for clone in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert (clone.source, clone.reason, str(clone)) == (error.source, error.reason,
                                                            str(error))
    report = IngestReport(errors=[error])
    assert report.as_dict()["errors"] == [{"source": "bad.pdf",
                                           "reason": "not a readable PDF: no pages"}]
