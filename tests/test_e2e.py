"""End to end in Chromium: pick a dataset, launch runs from the Train page, watch them finish,
then find their curves, holdout bars, threshold table and Grad-CAM overlays. Screenshots of
every page go to tests/artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from core.serving import jobs
from core.store import runs
from tests.browser import (
    ADAMW,
    browser_page,
    choose,
    choose_dataset,
    launch,
    need_chromium,
    plot_share_at_widths,
    screenshot,
    serve,
    technical_names,
    visit,
    wait_rendered,
)

pytestmark = pytest.mark.browser
LONG = 240_000  # ms: worker start-up and four runs on a 2-core CPU


def wait_for_runs(cache_dir, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(runs.list_runs(cache_dir)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} runs finished"
        time.sleep(0.5)


def press_until(button, done: Callable[[], bool], what: str, attempts: int = 5) -> None:
    """Press ``button`` until ``done()`` holds (checked for 10 s after each press). The Train
    page redraws its queue every 1.5 s; a press that lands while a redraw replaces the button
    can be dropped, so it is pressed again, loudly."""
    for attempt in range(attempts):
        button.click(timeout=60_000)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.2)
        print(f"!!! press {attempt + 1} of {button} was dropped; pressing it again")
    raise AssertionError(f"{what} after {attempts} presses")


def all_cancelling(cache_dir) -> bool:
    """Every running job was asked to stop."""
    return all(jobs.cancelling(cache_dir, j) for j in jobs.list_jobs(cache_dir) if j.state == "running")


def bars(page) -> int:
    chart = page.locator(".js-plotly-plot").first
    chart.locator(".bars .bartext").first.wait_for(timeout=30_000)
    return chart.locator(".bars .bartext").count()  # the visible bars carry their values


def test_launch_runs_and_inspect_them_in_the_browser(tiny_data, cache_dir, stop_worker_after):
    need_chromium()
    with serve(cache_dir) as url, browser_page() as page:
        visit(page, url, "", "How Much Data?")
        screenshot(page, "0-home-empty")

        choose_dataset(page, url, tiny_data, "36 readable images in 3 classes")
        wait_rendered(page)
        screenshot(page, "1-data")

        visit(page, url, "Train", "Launch")  # a new session: the dataset choice was kept
        page.get_by_text(str(tiny_data)).first.wait_for(timeout=30_000)
        page.get_by_text("Hyper-parameters").click()
        page.get_by_label("Epochs", exact=True).fill("3")
        page.get_by_label("Image size (px)", exact=True).fill("64")
        launch(page, cache_dir, "Launch", "4 runs queued, 0 already cached")
        page.get_by_text("Finished: 4").wait_for(timeout=LONG)
        wait_rendered(page)
        screenshot(page, "2-train")
        assert [j.state for j in jobs.list_jobs(cache_dir)] == ["complete"] * 4

        visit(page, url, "Experiments", "runs match")
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)  # plotly draws after the script
        assert page.locator(".js-plotly-plot").count() == 2
        assert page.get_by_text("(val)").count() > 0  # dashed validation curves in the legend
        screenshot(page, "3-experiments")
        for width, share in plot_share_at_widths(page, "3-experiments").items():
            assert share >= 0.5, f"at {width} px the legend leaves the curves {share:.0%} of the chart"

        visit(page, url, "Holdout", "Holdout accuracy by amount of training data")
        table = page.locator('[data-testid="stTable"]')
        table.wait_for(timeout=30_000)
        page.locator(".js-plotly-plot .bars .bartext").nth(2).wait_for(timeout=30_000)
        # a bar per measurement: "5%" of a 10-image pool takes the images "1/class" does, so the
        # four runs are three bars, by images per class
        assert page.locator(".js-plotly-plot").first.locator(".bars .bartext").count() == 3
        ticks = page.locator(".js-plotly-plot").first.locator(".xtick text").all_text_contents()
        assert len(ticks) == 3 and (ticks[0], ticks[-1]) == ("1", "3"), ticks
        for header in (
            "accuracy",
            "right and over 50% sure",
            "right and over 80% sure",
            "decided alone (at least 80% sure)",
        ):
            assert table.get_by_text(header, exact=True).count() == 1
        assert table.get_by_text("1 per class", exact=True).count() == 1
        screenshot(page, "4-holdout")
        for width, share in plot_share_at_widths(page, "4-holdout").items():
            assert share >= 0.5, f"at {width} px the bars get {share:.0%} of the chart"

        visit(page, url, "Grad-CAM", "Per page")
        page.get_by_label("Images", exact=True).wait_for(timeout=30_000)
        page.get_by_label("Images", exact=True).click()
        page.get_by_role("option", name="all", exact=True).click()
        page.get_by_text("predicted as").first.wait_for(timeout=120_000)
        wait_rendered(page)
        overlays = page.locator('[data-testid="stImage"] img')
        assert overlays.count() >= 3
        assert page.get_by_text("Grad-CAM for predicted").count() >= 1
        screenshot(page, "5-gradcam")

        # the original grid from Home: its 39 heads train together, the pages stay quick meanwhile
        visit(page, url, "", "The original experiment")
        launch(page, cache_dir, "Run the original experiment grid", "39 runs queued, 0 already cached")
        wait_rendered(page)
        screenshot(page, "6-home-grid-queued")
        during_seconds = visit(page, url, "Holdout", "Holdout accuracy by amount of training data")
        wait_for_runs(cache_dir, 4 + 39, timeout=240)
        later_seconds = visit(page, url, "Holdout", "Holdout accuracy by amount of training data")
        assert bars(page) > 4, "the grid's bars did not fill in"
        slowest = max(during_seconds, later_seconds)
        assert slowest < 30, f"the Holdout page took {slowest:.0f} s while training"
        screenshot(page, "7-holdout-grid")

        # twelve AdamW heads training together, every one cancelled from the Train page: the
        # two drawn live first, then the table's ten, so that the heads still training keep the
        # fit long (500 epochs of at least 8 batches of 1024 rows: over a minute for 12 heads)
        visit(page, url, "Train", "Launch")
        page.get_by_label("Seeds", exact=True).fill("1, 2, 3")
        page.get_by_text("Hyper-parameters").click()
        page.get_by_label("Epochs", exact=True).fill("500")
        page.get_by_label("Batch size", exact=True).fill("1024")
        page.get_by_label("Image size (px)", exact=True).fill("64")
        choose(page, ADAMW)
        launch(page, cache_dir, "Launch", "12 runs queued, 0 already cached")
        table_cancel = page.get_by_role("button", name="Cancel these 10 runs")
        table_cancel.wait_for(timeout=LONG)
        stopping = page.get_by_text("Cancelled: it stops at its next step")
        expect(stopping).to_have_count(0)
        for cancelled in (1, 2):
            press_until(
                page.get_by_role("button", name="Cancel this run").first,
                lambda n=cancelled: stopping.count() == n,
                f"{cancelled} run(s) did not show as cancelled",
            )
        press_until(table_cancel, lambda: all_cancelling(cache_dir), "running jobs were not cancelled")
        wait_rendered(page)
        screenshot(page, "8-train-cancelling")
        deadline = time.monotonic() + 120
        while any(j.state in ("queued", "running") for j in jobs.list_jobs(cache_dir)):
            assert time.monotonic() < deadline, "the queue did not drain after cancelling"
            time.sleep(0.5)
        states = [j.state for j in jobs.list_jobs(cache_dir)]
        assert states.count("cancelled") == 12 and states.count("complete") == 4 + 39

        worst = min(runs.list_runs(cache_dir), key=lambda s: s.accuracy)
        assert worst.accuracy < 1, "no run misclassified anything"
        visit(page, url, "Grad-CAM", "Per page")
        technical_names(page)  # runs by their ids
        page.get_by_label("Run", exact=True).click()
        page.keyboard.type(worst.run_id)
        page.get_by_role("option", name=re.compile(worst.run_id)).click()
        page.get_by_text(re.compile(r"wrong: .* predicted as")).first.wait_for(timeout=120_000)
        wait_rendered(page)
        assert page.locator('[data-testid="stImage"] img').count() >= 3
        screenshot(page, "9-gradcam-misclassified")
