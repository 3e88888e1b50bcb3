"""Malformed and hostile PDFs made on the fly, and a bounded `kb ingest` run over each.

Used by tests/hostile/test_malformed_pdfs.py; run as a module it prints, per file, the outcome,
wall time and peak memory of `kb ingest` (the numbers in the report):

    .venv/bin/python -m tests.hostile.malformed
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evals.bench.measure import measured, peak_mb

MEMORY_LIMIT = 3 * 1024**3  # RLIMIT_AS of the `kb ingest` child: address space, not RSS
HANG_GUARD_S = 300  # a hang guard, not a speed test
TEXT = ("The county relocated 120 households to the new town in 2019. Forty of them now work "
        "in the bamboo workshop, and their income rose.")


def text_pdf(pages: list[str]) -> bytes:
    """A real, well-formed PDF (fpdf2) with one text block per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=10)
        pdf.set_xy(10, 15)
        pdf.multi_cell(170, 5, text)
    return bytes(pdf.output())


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF written byte by byte: object 1 is the catalog; a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return (b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(data), extra)
            + data + b"\nendstream")


def _deflate_repeated(block: bytes, total: int) -> bytes:
    """zlib of `block` repeated (whole blocks, about `total` bytes), made 1 MB at a time."""
    comp = zlib.compressobj(9)
    per_mb = max(1, (1 << 20) // len(block))
    parts, done = [], 0
    while done < total:
        n = min(per_mb, -(-(total - done) // len(block)))
        parts.append(comp.compress(block * n))
        done += n * len(block)
    parts.append(comp.flush())
    return b"".join(parts)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def huge_image_pdf(side: int = 10_000) -> bytes:
    """One page with a side x side RGB image (300 MB decoded; ~300 KB on disk) and a line of
    text. Text extraction must not decode the image."""
    content = zlib.compress(b"q 500 0 0 500 50 200 cm /Im1 Do Q BT /F1 12 Tf 72 750 Td ("
                            + TEXT.encode() + b") Tj ET")
    image = _deflate_repeated(b"\x00", side * side * 3)
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
        _stream(content),
        _FONT,
        _stream(image, b"/Type /XObject /Subtype /Image /Width %d /Height %d "
                       b"/ColorSpace /DeviceRGB /BitsPerComponent 8 " % (side, side)),
    ])


_TEXT_OPS = b"BT /F1 12 Tf 72 720 Td (poverty alleviation) Tj ET\n"


def content_bomb_pdf(inflated: int = 100_000_000) -> bytes:
    """One page whose content stream inflates to `inflated` bytes of text operators (a zip
    bomb in a content stream): a few hundred KB on disk."""
    return shared_content_pdf(1, inflated)


def shared_content_pdf(pages: int = 2000, inflated: int = 1_500_000) -> bytes:
    """`pages` pages that all draw one content stream of `inflated` bytes of text operators:
    tens of KB on disk, gigabytes of text extraction work if every page is read."""
    kids = b" ".join(b"%d 0 R" % (5 + k) for k in range(pages))
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
            b"/Resources << /Font << /F1 4 0 R >> >> >>")
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        _stream(_deflate_repeated(_TEXT_OPS, inflated)),
        _FONT,
        *[page] * pages,
    ])


def empty_pages_pdf(n: int = 10_000) -> bytes:
    """`n` blank pages (pypdf writer)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(n):
        writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf() -> bytes:
    """A five-page text PDF cut at 60% of its bytes: no xref, no trailer, a page cut off."""
    raw = text_pdf([f"Page {k}. {TEXT}" for k in range(1, 6)])
    return raw[: int(len(raw) * 0.6)]


def broken_xref_pdf() -> bytes:
    """A text PDF whose xref offsets all point to the wrong bytes and whose startxref is
    wrong too (readers must rebuild the table by scanning)."""
    raw = text_pdf([TEXT])
    raw = re.sub(rb"(?m)^(\d{10}) (\d{5}) n", lambda m: b"%010d %s n" % (
        int(m.group(1)) + 7, m.group(2)), raw)
    return re.sub(rb"startxref\s+\d+", b"startxref\n999999", raw)


def encrypted_pdf() -> bytes:
    """A text PDF that needs a user password (fpdf2, RC4 128-bit)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.multi_cell(170, 5, TEXT)
    return bytes(pdf.output())


def random_bytes_pdf(size: int = 200_000, seed: int = 7) -> bytes:
    """A %PDF- header followed by random bytes (deterministic)."""
    return b"%PDF-1.7\n" + random.Random(seed).randbytes(size)


@dataclass(frozen=True)
class Case:
    name: str  # file name in the corpus
    make: Callable[[], bytes]
    ingested: bool  # expected outcome: ingested (True) or refused (False)
    reason: str = ""  # expected start of the refusal reason


CASES = [
    Case("truncated.pdf", truncated_pdf, False, "not a readable PDF"),
    Case("broken_xref.pdf", broken_xref_pdf, True),
    Case("encrypted.pdf", encrypted_pdf, False, "encrypted PDF; decrypt it first"),
    Case("empty_10000_pages.pdf", empty_pages_pdf, False, "PDF has too many pages: 10000"),
    Case("huge_image.pdf", huge_image_pdf, True),
    Case("content_bomb.pdf", content_bomb_pdf, False,
         "no extractable text: page 1: content unreadable"),
    Case("big_content.pdf", lambda: content_bomb_pdf(5_000_000), False,
         "no extractable text: page 1: content of 4.8 MB skipped"),
    Case("shared_content.pdf", shared_content_pdf, False, "PDF page content too large"),
    Case("random_bytes.pdf", random_bytes_pdf, False, "not a readable PDF"),
]

def good_files() -> dict[str, bytes]:
    """Well-formed files ingested beside the malformed ones: they must still get in."""
    return {
        "good_notes.txt": (b"Field notes\n\nThe village built a clinic in 2018. A doctor "
                           b"visits every week, and the nearest hospital is an hour away.\n"),
        "good_report.pdf": text_pdf([TEXT, "Each family received a loan of 8,000 yuan for a "
                                           "greenhouse."]),
    }


@dataclass(frozen=True)
class Run:
    returncode: int
    report: dict | None  # `kb ingest --json` output, None if it printed none
    stderr: str
    seconds: float  # wall clock (depends on the machine's load)
    cpu_seconds: float  # user + system time of the child (less so)
    max_rss_mb: float


def kb_command() -> list[str]:
    """The installed `kb` console script beside this interpreter."""
    script = Path(sys.executable).with_name("kb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def _limit_memory() -> None:  # runs in the child between fork and exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_ingest(root: Path, files: dict[str, bytes]) -> Run:
    """`kb ingest --json` in a child process over a fresh corpus of `files`, under
    RLIMIT_AS = MEMORY_LIMIT, killed after HANG_GUARD_S seconds."""
    corpus, data = root / "corpus", root / "data"
    shutil.rmtree(root, ignore_errors=True)
    corpus.mkdir(parents=True)
    for name, raw in files.items():
        (corpus / name).write_bytes(raw)
    env = dict(os.environ, KB_DATA_DIR=str(data), KB_CORPUS_DIR=str(corpus),
               # e5 alone: a real embedder in its own C engine, no torch (fast to load).
               KB_EMBEDDING__MODELS='["e5"]', HF_HUB_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false")
    out_path, err_path = root / "stdout.txt", root / "stderr.txt"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        peak_file = root / "peak.txt"
        proc = subprocess.Popen(measured([*kb_command(), "ingest", "--json"], peak_file),
                                stdout=out, stderr=err, env=env, cwd=root,
                                preexec_fn=_limit_memory, start_new_session=True)
        deadline = started + HANG_GUARD_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher and `kb ingest` under it
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        report = json.loads(stdout.splitlines()[-1]) if stdout else None
    except json.JSONDecodeError:
        report = None
    return Run(proc.returncode, report, err_path.read_text(errors="replace"), seconds,
               usage.ru_utime + usage.ru_stime, peak_mb(peak_file))


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print("| file | size on disk | outcome | exit | wall s | CPU s | peak RSS MB |")
        print("|---|---|---|---|---|---|---|")
        good = good_files()
        baseline = run_ingest(Path(tmp) / "baseline", good)
        print(f"| (the good files only) | - | ingested | {baseline.returncode} | "
              f"{baseline.seconds:.1f} | {baseline.cpu_seconds:.1f} | "
              f"{baseline.max_rss_mb:.0f} |")
        for case in CASES:
            raw = case.make()
            run = run_ingest(Path(tmp) / case.name, {case.name: raw})
            errors = {e["source"]: e["reason"] for e in (run.report or {}).get("errors", [])}
            outcome = f"refused: {errors[case.name]}" if case.name in errors else (
                "ingested" if run.report else f"no report: {run.stderr[-200:]!r}")
            print(f"| {case.name} | {len(raw) / 1024:.0f} KB | {outcome} | {run.returncode} | "
                  f"{run.seconds:.1f} | {run.cpu_seconds:.1f} | {run.max_rss_mb:.0f} |")


if __name__ == "__main__":
    main()
