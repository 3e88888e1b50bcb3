from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import IngestSettings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPUS = ROOT / "corpus"


@pytest.fixture
def ingest_settings() -> IngestSettings:
    return IngestSettings()


def make_pdf(path: Path, pages: list[str], title: str | None = None, **encryption) -> Path:
    """A real PDF with one text block per page and a printed page number at the foot."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    if encryption:
        pdf.set_encryption(**encryption)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("helvetica", size=10)
        pdf.set_xy(10, 15)
        pdf.multi_cell(170, 5, text)
        pdf.set_xy(95, 280)
        pdf.cell(20, 5, str(number), align="C")
    pdf.output(str(path))
    return path
