"""The home page: renders from the cache with AppTest, and is served in a real browser."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.base.locks import try_lock
from core.base.paths import DEFAULT_DATA, PROJECT_ROOT, write_json
from core.data.splits import ORIGINAL_SLICES
from core.engine.pipeline import train_run
from core.serving import jobs
from tests.browser import browser_page, need_chromium, screenshot, serve, wait_rendered
from tests.quick import quick_run


def test_home_page_on_an_empty_cache_says_what_to_do(cache_dir, monkeypatch):
    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert app.metric[1].value == "0"
    assert "No runs on fashion-mnist yet" in app.info[0].value


@pytest.mark.train
def test_home_page_counts_the_runs_of_the_dataset_in_use(tiny_data, cache_dir, monkeypatch):
    train_run(
        quick_run(tiny_data),
        cache_dir,
    )
    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    write_json(cache_dir / "ui.json", {"dataset": str(tiny_data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert not app.exception
    assert app.metric[0].value == tiny_data.name
    assert app.metric[1].value == "1"
    write_json(cache_dir / "ui.json", {"dataset": str(DEFAULT_DATA)})  # a run, but on another dataset
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    assert (app.metric[0].value, app.metric[1].value) == ("fashion-mnist", "0")
    assert "1 cached on all datasets" in app.metric[1].proto.help
    assert "No runs on fashion-mnist yet" in app.info[0].value


def test_one_click_queues_the_original_grid(cache_dir, monkeypatch):
    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=60).run()
    with try_lock(cache_dir / "jobs" / "worker.lock"):  # as if a worker were busy: nothing trains here
        app.button(key="home_grid").click().run()
    assert not app.exception
    queued = jobs.list_jobs(cache_dir)
    assert len(queued) == 39 and {j.state for j in queued} == {"queued"}
    assert {j.config.slice for j in queued} == set(ORIGINAL_SLICES)
    assert app.metric[2].value == "39"
    assert not [i for i in app.info if "press the button above" in i.value]  # it was pressed


@pytest.mark.browser
def test_served_home_page_renders_in_chromium(cache_dir):
    need_chromium()
    with serve(cache_dir) as url, browser_page() as page:
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("How Much Data?").first.wait_for(state="visible", timeout=60_000)
        wait_rendered(page)
        assert page.get_by_text("No runs on fashion-mnist yet").first.is_visible()
        screenshot(page, "home")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_chromium_fails_the_browser_tests_under_ci_and_skips_them_elsewhere(
    monkeypatch, tmp_path, ci, outcome
):
    import tests.browser

    monkeypatch.setattr(tests.browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium is not installed"):
        need_chromium()
