"""Print the HTML report to PDF with Chromium, for people who read on paper or forward a file.

One job: an HTML report file in, a PDF file out. The report's charts are drawn by JavaScript,
so the page is opened in headless Chromium (through Playwright), printing waits until every
chart has drawn its SVG, the charts are redrawn at the page's width (the report's own
``hmdFitForPrint``), and Chromium prints with the report's print style: A4, a page per section.
Nothing is fetched: the report is self-contained and the browser context is offline.

Chromium is Debian's ``/usr/bin/chromium`` unless ``HMD_CHROMIUM`` names another; where it is
missing, :func:`print_pdf` raises a :class:`~core.base.errors.UserError` that says so in one line.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UserError
from core.base.paths import write_atomic

DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
# what the tests launch Chromium with: a root user in a container needs no sandbox, a machine
# without a GPU or a large /dev/shm needs neither, and nothing phones home while it prints
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# every chart has drawn its SVG (Plotly adds .js-plotly-plot and svg.main-svg when it has)
CHARTS_DRAWN = (
    "document.readyState === 'complete' && [...document.querySelectorAll('.plotly-graph-div')]"
    ".every(chart => chart.querySelector('svg.main-svg'))"
)
FIT_FOR_PRINT = "window.hmdFitForPrint ? window.hmdFitForPrint().then(() => true) : true"


@dataclass(frozen=True)
class PrintedReport:
    """The PDF written, and how many pages it has (a page per section when each fits on one)."""

    path: Path
    pages: int


class ChromiumMissing(UserError):
    """No Chromium where one was looked for: printing cannot happen on this machine as set up."""


def chromium_path() -> Path:
    """The Chromium to print with: ``HMD_CHROMIUM`` when set (a user's own build), else Debian's.

    Raises:
        ChromiumMissing: nothing is at that path.
    """
    named = os.environ.get("HMD_CHROMIUM")
    path = Path(named).expanduser() if named else DEFAULT_CHROMIUM
    if not path.is_file():
        how = "HMD_CHROMIUM names a missing file" if named else "set HMD_CHROMIUM to its path"
        raise ChromiumMissing(f"--pdf needs Chromium (not found at {path}; {how})")
    return path


def print_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 120) -> PrintedReport:
    """Print the report at ``html_path`` to ``pdf_path`` (written atomically).

    Raises:
        ChromiumMissing: see :func:`chromium_path`.
        UserError: ``pdf_path`` is a folder, Playwright is not installed, or Chromium could not
            open or print the report within ``timeout_s`` (its message, first line).
    """
    pdf_path = Path(pdf_path).expanduser()
    if pdf_path.is_dir():
        raise UserError(f"--pdf {pdf_path} is a folder; give the path of the .pdf file to write")
    chromium = chromium_path()
    try:
        from playwright.sync_api import Error as PlaywrightError
    except ImportError as error:
        raise UserError(f"--pdf needs Playwright ({error}); pip install -r requirements.txt") from error
    try:
        pdf = _print(chromium, Path(html_path).resolve(), timeout_s * 1000)
    except PlaywrightError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"Chromium could not print {html_path}: {first}") from error
    write_atomic(pdf_path, pdf)
    return PrintedReport(pdf_path, count_pages(pdf))


def _print(chromium: Path, html_path: Path, timeout_ms: float) -> bytes:
    """Chromium's PDF of the page once every chart has drawn and fits the page's width."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=list(CHROMIUM_ARGS), timeout=timeout_ms
        )
        try:
            page = browser.new_context(offline=True).new_page()
            page.set_default_timeout(timeout_ms)
            page.goto(html_path.as_uri(), wait_until="load")
            page.wait_for_function(CHARTS_DRAWN)
            page.evaluate(FIT_FOR_PRINT)
            # the page size and margins are the report's own (@page); backgrounds keep the
            # answer's and caveats' colours
            return page.pdf(prefer_css_page_size=True, print_background=True)
        finally:
            browser.close()


def count_pages(pdf: bytes) -> int:
    """The pages of a PDF, read by pypdf (Chromium's page tree, not a guess from the layout)."""
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)
