"""The app in a real headless browser (Debian's chromium driven by Playwright), as a first-time
user would use it: ask, read the cited answer and the highlighted source, open the glossary,
export a course pack, try a bad upload. Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(live_app: str):  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(live_app)
        page.wait_for_selector("#kb-question textarea")
        yield page
        context.close()
        browser.close()


def chat_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#kb-chat").inner_text()


def test_ask_and_see_a_cited_answer_with_a_highlighted_source(page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    assert "policykb" in page.title()
    assert "answers are quoted from the English sources" in page.inner_text("#kb-hint")
    page.screenshot(path=str(artifacts / "01-start.png"), full_page=True)

    page.fill("#kb-question textarea", "What are the five batches?")
    t0 = time.perf_counter()
    page.click("#kb-ask")
    page.wait_for_function(
        "() => document.querySelectorAll('#kb-chat .message-row, #kb-chat [data-testid=bot]')"
        ".length > 0 && document.querySelector('#kb-chat').innerText.includes('five')"
    )
    first = time.perf_counter() - t0
    page.wait_for_selector("#kb-sources mark")
    full = time.perf_counter() - t0
    print(f"\nbrowser: first text {first:.2f} s, full answer with sources {full:.2f} s")
    text = chat_text(page)
    assert "[1]" in text and "relocation" in text.lower()
    mark = page.locator("#kb-sources mark").first.inner_text()
    assert mark and mark.split()[0] in page.inner_text("#kb-sources")
    assert "Sources" in page.inner_text("#kb-sources")
    assert "p. " in page.inner_text("#kb-sources")  # the page of the citation
    page.screenshot(path=str(artifacts / "02-answer.png"), full_page=True)

    # The link opens the passage in its document, highlighted.
    with page.context.expect_page() as opened:
        page.locator("#kb-sources a", has_text="Open passage").first.click()
    source = opened.value
    source.wait_for_selector("mark#kb-hl")
    assert source.locator("mark#kb-hl").inner_text().strip()
    source.screenshot(path=str(artifacts / "03-source.png"))
    source.close()


def test_abstention_looks_different(page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.fill("#kb-question textarea", "What was the poverty line in Kenya in 2019?")
    page.click("#kb-ask")
    page.wait_for_selector("#kb-sources .kb-abstained")
    assert "Not found in the documents" in chat_text(page)
    assert "Closest passages" in page.inner_text("#kb-sources")
    page.screenshot(path=str(artifacts / "04-abstention.png"), full_page=True)


def test_glossary_is_searchable(page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Glossary").click()
    page.wait_for_selector("#kb-glossary .kb-gloss")
    page.fill("#kb-glossary-search textarea", "five batches")
    page.wait_for_function(
        "() => document.querySelectorAll('#kb-glossary .kb-gloss').length < 4")
    glossary = page.inner_text("#kb-glossary")
    assert "Five Batches" in glossary and "Five Measures for Poverty Eradication" in glossary
    page.screenshot(path=str(artifacts / "05-glossary.png"), full_page=True)


def test_course_pack_preview_and_export(page, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Course pack").click()
    page.fill("#kb-topic textarea", "relocation")
    page.click("#kb-pack")
    page.wait_for_selector("#kb-pack-preview h2")
    preview = page.inner_text("#kb-pack-preview")
    for heading in ("Key concepts", "Key facts", "Discussion questions", "Quiz", "Sources"):
        assert heading in preview
    page.screenshot(path=str(artifacts / "06-pack.png"), full_page=True)
    for button, suffix in (("#kb-pack-docx", ".docx"), ("#kb-pack-md", ".md")):
        with page.expect_download() as download:
            page.click(button)
        target = artifacts / f"course-pack{suffix}"
        download.value.save_as(str(target))
        assert target.stat().st_size > 500
    assert "# Course pack: relocation" in (artifacts / "course-pack.md").read_text()


def test_bad_upload_shows_the_error(page, artifacts: Path, tmp_path: Path, real_kb) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name="Library").click()
    rows_before = page.locator("#kb-library tbody tr").count()
    docs_before = set(real_kb.catalog.documents)
    bad = tmp_path / "budget.pdf"
    bad.write_bytes(b"PK\x03\x04 this is a zip archive named .pdf")
    page.locator("#kb-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Add to the library").click()
    page.wait_for_function(
        "() => document.querySelector('#kb-upload-status textarea').value.includes('budget')")
    status = page.input_value("#kb-upload-status textarea")
    assert "Not added: budget.pdf: not a PDF" in status
    assert page.locator("#kb-library tbody tr").count() == rows_before
    assert set(real_kb.catalog.documents) == docs_before
    page.screenshot(path=str(artifacts / "07-bad-upload.png"), full_page=True)
    shutil.rmtree(tmp_path, ignore_errors=True)
