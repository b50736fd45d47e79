"""Serve the app with ``streamlit run`` on a free loopback port and drive Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.base.paths import PROJECT_ROOT
from core.serving import jobs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
# A rerun on a loaded CI machine can take longer than Playwright's default 5 s: an expectation
# waits up to 30 s for its element (it returns as soon as the element is there).
expect.set_options(timeout=30_000)


def need_chromium() -> None:
    """Skip a browser test where Chromium is missing, loudly; under ``CI=true`` fail instead, so
    that a CI machine without it cannot pass with no browser test run."""
    if Path(CHROMIUM).exists():
        return
    missing = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{missing}: CI=true runs every browser test", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {missing}; browser tests did not run")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(
    cache_dir: Path,
    timeout: float = 60,
    uploads: Path | None = None,
    port: int | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """``streamlit run app.py`` against ``cache_dir`` (and ``uploads`` for uploaded datasets,
    never the repository's data/ folder in a test); yields the base URL. ``args`` go to
    ``streamlit run`` (``--secrets.files`` for a sign-in test), ``env`` over the environment."""
    port = port or free_port()
    env = {
        **os.environ,
        "HMD_CACHE": str(cache_dir),
        "HMD_UPLOADS": str(uploads or cache_dir / "uploads"),
        **(env or {}),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"streamlit-{cache_dir.name}.log"
    log = open(log_path, "w")  # noqa: SIM115 (the server writes to it until the end)
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        # straight to the loopback port: urllib's shared opener keeps the proxies of the
        # environment it was first used in (a test that sends downloads to a closed port)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            try:
                answer = direct.open(f"{url}/_stcore/health", timeout=2).read()
                if answer == b"ok":
                    break
            except OSError as error:  # refused while starting; the last one is reported
                answer = error
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"streamlit did not start (health check: {answer!r}):\n{log_path.read_text()}"
                )
            time.sleep(0.3)
        yield url
    except BaseException:
        print(f"--- the end of the streamlit log ---\n{log_path.read_text()[-3000:]}")
        raise
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@contextlib.contextmanager
def browser_page() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield page
        except BaseException:
            _report_failure(page)
            raise
        finally:
            browser.close()


def _report_failure(page) -> None:
    """What the browser showed when a test failed: a screenshot in tests/artifacts/ and the
    page's text on stdout, which pytest prints with the failure (CI keeps no artifacts)."""
    with contextlib.suppress(Exception):
        screenshot(page, "failure")
        print(f"--- page {page.url} when the test failed ---")
        print(page.locator('[data-testid="stMain"]').inner_text(timeout=5_000)[:4000])


def wait_rendered(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the page script. Right after a page loads the
    state reads "notRunning" before the run starts: wait for an element first, then this."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def plot_share_at_widths(page, name: str, widths: tuple[int, ...] = (1280, 1920)) -> dict[int, float]:
    """Screenshots at laptop and desktop widths (``<name>-<width>.png``), and at each the share of
    the first chart's width its plot area gets (what a long legend or clipped axis would eat)."""
    shares = {}
    chart = page.locator(".js-plotly-plot").first
    for width in widths:
        before = chart.locator(".main-svg").first.get_attribute("width")
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_function(
            "before => document.querySelector('.js-plotly-plot .main-svg').getAttribute('width') !== before",
            arg=before,
            timeout=30_000,
        )
        wait_rendered(page)
        area = chart.locator(".nsewdrag").first.bounding_box()
        shares[width] = area["width"] / float(chart.locator(".main-svg").first.get_attribute("width"))
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1400, "height": 1000})
    return shares


def visit(page, url: str, path: str, expect: str) -> float:
    """Open a page and wait until it has rendered; returns the seconds it took."""
    started = time.monotonic()
    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
    page.get_by_text(expect).first.wait_for(state="visible", timeout=60_000)
    wait_rendered(page)
    return time.monotonic() - started


ADAMW = "AdamW epochs (the heads of a grid stacked in one fit)"


def choose(page, option: str) -> None:
    """Pick the radio button labelled ``option``, and wait until the page shows it picked."""
    page.get_by_text(option, exact=True).click()
    expect(page.get_by_role("radio", name=option)).to_be_checked()


def launch(page, cache_dir, button: str, report: str) -> None:
    """Press a button that queues runs and wait for the page to say what it queued.

    Once, in CI, no report came within 60 s of a click on Launch, and nothing recorded why (a
    failing browser test now prints the page); dozens of runs since have not repeated it. A
    click that queues nothing within 15 s is made once more, loudly; runs that were queued
    must be reported on the page.
    """
    before = len(jobs.list_jobs(cache_dir))
    page.get_by_role("button", name=button).click()
    deadline = time.monotonic() + 15
    while len(jobs.list_jobs(cache_dir)) == before and time.monotonic() < deadline:
        time.sleep(0.3)
    if len(jobs.list_jobs(cache_dir)) == before:
        print(f"!!! pressing {button!r} queued nothing in 15 s; pressing it again")
        page.get_by_role("button", name=button).click()
    page.get_by_text(report).wait_for(timeout=60_000)


def choose_dataset(page, url: str, folder: Path, says: str) -> None:
    """On the Data page, type a class-folder dataset's path and wait for its counts."""
    visit(page, url, "Data", "readable images")
    page.get_by_text("a folder path").click()
    box = page.get_by_label("Class-folder dataset", exact=True)
    box.fill(str(folder))
    box.press("Enter")
    page.get_by_text(says).wait_for(timeout=60_000)


def technical_names(page) -> None:
    """Turn on the sidebar's technical names (experiments and runs by their settings and ids)."""
    page.get_by_text("Technical names", exact=True).click()
    expect(page.get_by_role("switch", name="Technical names")).to_be_checked()
    wait_rendered(page)
