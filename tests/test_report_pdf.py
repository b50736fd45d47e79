"""The report printed: ``python -m core report --pdf`` through Debian's Chromium, the PDF read back
with pypdf (its pages, each page's text, the images on the Grad-CAM page), and the report's print
style checked in the browser; without Chromium, one line and the HTML all the same."""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.base.errors import UserError
from core.present import report_pdf
from core.present.report_html import PRINT_WIDTH_PX
from tests.browser import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.command import core
from tests.test_budget import budget_mistakes

# each section's heading, and text that only its chart draws (axis titles, the legend under the
# plot, the top tick): all on the section's page means the chart is there and whole
SECTIONS = (
    "Learning curve",
    "Holdout accuracy by amount of training data",
    "How often it is right, and how often it is sure",
    "Where the model looked on its mistakes",
)
CHART_TEXT = {
    "Learning curve": ("images per class (log scale)", "holdout accuracy", "measured (mean over runs)"),
    "Holdout accuracy by amount of training data": ("training images per class", "holdout accuracy", "100%"),
}
A4_POINTS = (595, 842)  # 210 x 297 mm at 72 points per inch


def headings(data: Path) -> tuple[str, ...]:
    """The report's sections in order, by their headings: the answer first, then the charts."""
    return (f"How much data does {data.name} need?", *SECTIONS)


@pytest.fixture(scope="module")
def cache(curve_cache, tmp_path_factory) -> Path:
    """A copy of the curve sweep's cache: the report caches its Grad-CAM overlays (once for the
    module: the second report reads them back)."""
    return shutil.copytree(curve_cache, tmp_path_factory.mktemp("printed") / "cache")


@pytest.fixture(scope="module")
def printed(cache, curve_data) -> dict:
    """The report of the curve sweep, written and printed once."""
    need_chromium()
    html, pdf = cache.parent / "report.html", cache.parent / "report.pdf"
    done = core(cache, "report", "--data", str(curve_data), "--out", str(html), "--pdf", str(pdf), "--json")
    assert done.returncode == 0, done.stderr
    return {"result": json.loads(done.stdout), "html": html, "pdf": pdf, "cache": cache}


def page_texts(pdf: Path) -> list[str]:
    """Each page's text, ligatures ("ﬁ") undone and runs of white space made one space."""
    pages = PdfReader(pdf).pages
    return [" ".join(unicodedata.normalize("NFKC", page.extract_text()).split()) for page in pages]


@pytest.mark.browser
def test_the_printed_report_has_a_page_per_section_with_its_chart_whole_on_it(printed, curve_data):
    result, html, pdf = printed["result"], printed["html"], printed["pdf"]
    titles = headings(curve_data)
    assert result == {"out": str(html), "bytes": html.stat().st_size, "pdf": str(pdf), "pdf_pages": 5}
    # five sections, each starting a page and each short enough for one: five A4 pages
    assert re.findall(r"<section><h[12]>(.*?)</h[12]>", html.read_text()) == list(titles)
    texts = page_texts(pdf)
    assert len(texts) == len(titles) == result["pdf_pages"]
    for page in PdfReader(pdf).pages:
        assert (round(page.mediabox.width), round(page.mediabox.height)) == A4_POINTS
    for number, (heading, text) in enumerate(zip(titles, texts, strict=True), start=1):
        assert heading in text, f"page {number} is not {heading!r}: {text[:200]}"
        for drawn in CHART_TEXT.get(heading, ()):
            assert drawn in text, f"{heading!r}'s chart lacks {drawn!r} on page {number}"
    for heading, (axis, *_) in CHART_TEXT.items():
        assert [n for n, text in enumerate(texts, start=1) if axis in text] == [titles.index(heading) + 1]
    # the mode bar's buttons are titled, not labelled: their titles must not reach the paper
    chrome = ("Download plot as a png", "Zoom in", "Zoom out", "Autoscale", "Reset axes", "Plotly")
    assert [words for words in chrome if words in " ".join(texts)] == []
    wrong = budget_mistakes(printed["cache"], curve_data)
    assert len(PdfReader(pdf).pages[-1].images) == 3 * min(4, wrong), "image, predicted CAM, true CAM"
    assert "Made by How Much Data?" in texts[-1]


@pytest.mark.browser
def test_the_print_style_hides_the_mode_bar_and_fits_the_charts_to_the_page(printed):
    """On screen the charts are as wide as the window and have Plotly's mode bar; printed, they
    are the page's width, without the mode bar or hover labels, and each section starts a page."""
    from playwright.sync_api import sync_playwright

    hidden = "all => all.map(element => getComputedStyle(element).display === 'none')"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(printed["html"].as_uri())
        page.wait_for_function(report_pdf.CHARTS_DRAWN, timeout=30_000)
        charts, chrome = page.locator(".js-plotly-plot"), page.locator(".modebar-container, .hoverlayer")
        assert charts.count() == 2
        assert float(charts.first.locator(".main-svg").first.get_attribute("width")) > PRINT_WIDTH_PX
        assert chrome.evaluate_all(hidden) == [False] * 4, "a mode bar and a hover layer per chart"
        page.emulate_media(media="print")
        page.evaluate(report_pdf.FIT_FOR_PRINT)
        assert chrome.evaluate_all(hidden) == [True] * 4
        widths = [float(chart.locator(".main-svg").first.get_attribute("width")) for chart in charts.all()]
        assert widths == [PRINT_WIDTH_PX] * 2
        breaks = page.locator("section").evaluate_all("all => all.map(s => getComputedStyle(s).breakBefore)")
        assert breaks == ["auto"] + ["page"] * len(SECTIONS)
        browser.close()


@pytest.mark.train  # the report needs the learning-curve sweep's runs
def test_report_pdf_without_chromium_writes_the_html_and_says_so_in_one_line(
    cache, curve_data, tmp_path, monkeypatch
):
    missing = tmp_path / "no" / "chromium"
    monkeypatch.setenv("HMD_CHROMIUM", str(missing))  # the CLI's process inherits it
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    done = core(cache, "report", "--data", str(curve_data), "--out", str(html), "--pdf", str(pdf))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: --pdf needs Chromium (not found at {missing}; HMD_CHROMIUM names a missing file); "
        f"the HTML report is at {html}"
    ]
    assert "How much data does" in html.read_text()
    assert not pdf.exists()


def test_without_hmd_chromium_the_message_says_where_it_looked_and_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("HMD_CHROMIUM", raising=False)
    monkeypatch.setattr(report_pdf, "DEFAULT_CHROMIUM", tmp_path / "chromium")
    with pytest.raises(UserError) as raised:
        report_pdf.print_pdf(tmp_path / "report.html", tmp_path / "report.pdf")
    assert str(raised.value) == (
        f"--pdf needs Chromium (not found at {tmp_path / 'chromium'}; set HMD_CHROMIUM to its path)"
    )
