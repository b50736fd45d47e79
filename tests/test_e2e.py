"""End to end in Chromium: pick a dataset, launch runs from the Train page, watch them finish,
then find their curves, holdout bars, threshold table and Grad-CAM overlays. Screenshots of
every page go to tests/artifacts/."""

from __future__ import annotations

from core import jobs
from tests.browser import browser_page, need_chromium, screenshot, serve, wait_rendered

LONG = 240_000  # ms: worker start-up and four runs on a 2-core CPU


def visit(page, url: str, path: str, expect: str) -> None:
    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
    page.get_by_text(expect).first.wait_for(state="visible", timeout=60_000)
    wait_rendered(page)


def test_launch_runs_and_inspect_them_in_the_browser(tiny_data, cache_dir):
    need_chromium()
    with serve(cache_dir) as url, browser_page() as page:
        visit(page, url, "", "How Much Data?")
        screenshot(page, "0-home-empty")

        visit(page, url, "Data", "readable images")
        page.get_by_text("a folder path").click()
        box = page.get_by_label("Class-folder dataset", exact=True)
        box.fill(str(tiny_data))
        box.press("Enter")
        page.get_by_text("36 readable images in 3 classes").wait_for(timeout=60_000)
        wait_rendered(page)
        screenshot(page, "1-data")

        visit(page, url, "Train", "Launch")  # a new session: the dataset choice was kept
        page.get_by_text(str(tiny_data)).first.wait_for(timeout=30_000)
        page.get_by_text("Hyper-parameters").click()
        page.get_by_label("Epochs", exact=True).fill("3")
        page.get_by_label("Image size (px)", exact=True).fill("64")
        page.get_by_role("button", name="Launch").click()
        page.get_by_text("4 run(s) queued, 0 already cached").wait_for(timeout=60_000)
        page.get_by_text("Finished: 4").wait_for(timeout=LONG)
        wait_rendered(page)
        screenshot(page, "2-train")
        assert [j.state for j in jobs.list_jobs(cache_dir)] == ["complete"] * 4

        visit(page, url, "Experiments", "runs match")
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)  # plotly draws after the script
        assert page.locator(".js-plotly-plot").count() == 2
        assert page.get_by_text("(val)").count() > 0  # dashed validation curves in the legend
        screenshot(page, "3-experiments")

        visit(page, url, "Holdout", "Holdout accuracy by slice")
        table = page.locator('[data-testid="stTable"]')
        table.wait_for(timeout=30_000)
        page.locator(".js-plotly-plot .bars .point").nth(3).wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").first.locator(".bars .point").count() == 4, "a bar per slice"
        ticks = page.locator(".js-plotly-plot").first.locator(".xtick text").all_text_contents()
        assert ticks == ["1/class", "3/class", "5%", "20%"]
        for header in ("argmax", "P(true)>0.5", "P(true)>0.8", "coverage@0.8"):
            assert table.get_by_text(header, exact=True).count() == 1
        assert table.get_by_text("1/class", exact=True).count() == 1
        screenshot(page, "4-holdout")

        visit(page, url, "Grad-CAM", "Per page")
        page.get_by_label("Images", exact=True).wait_for(timeout=30_000)
        page.get_by_label("Images", exact=True).click()
        page.get_by_role("option", name="all", exact=True).click()
        page.get_by_text("predicted as").first.wait_for(timeout=120_000)
        wait_rendered(page)
        overlays = page.locator('[data-testid="stImage"] img')
        assert overlays.count() >= 3
        assert page.get_by_text("gradcam for predicted").count() >= 1
        screenshot(page, "5-gradcam")
