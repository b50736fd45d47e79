"""The home page: renders from the cache with AppTest, and is served in a real browser."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core import runs
from core.paths import PROJECT_ROOT
from core.pipeline import train_run
from tests.browser import browser_page, need_chromium, screenshot, serve, wait_rendered


def test_home_page_on_an_empty_cache_says_what_to_do(cache_dir, monkeypatch):
    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert app.metric[1].value == "0"
    assert "No runs cached yet" in app.info[0].value


def test_home_page_lists_cached_runs(tiny_data, cache_dir, monkeypatch):
    summary = train_run(runs.RunConfig(data=str(tiny_data), backbone="efficientnet_lite0", mode="frozen",
                                       slice="1/class", image_size=64, epochs=2), cache_dir)
    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert app.metric[1].value == "1"
    assert summary["run_id"] in app.dataframe[0].value["run"].tolist()


def test_served_home_page_renders_in_chromium(cache_dir):
    need_chromium()
    with serve(cache_dir) as url, browser_page() as page:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("How Much Data?").first.wait_for(state="visible", timeout=60_000)
        wait_rendered(page)
        assert page.get_by_text("No runs cached yet").first.is_visible()
        screenshot(page, "home")
