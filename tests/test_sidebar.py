"""The sidebar's dataset picker, in Chromium: it always offers the bundled dataset, so a user who
switched to their own folder can switch back without the Data page (it once listed only the
datasets with runs and the one in use)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from core.base.paths import DEFAULT_DATA
from tests.browser import browser_page, need_chromium, serve, visit

pytestmark = pytest.mark.browser


def test_sidebar_switches_back_to_the_bundled_dataset_from_a_folder_without_runs(tiny_data, cache_dir):
    need_chromium()
    (cache_dir / "ui.json").write_text(json.dumps({"dataset": str(tiny_data)}))
    with serve(cache_dir) as url, browser_page() as page:
        visit(page, url, "", "How Much Data?")
        picker = page.get_by_role("combobox", name="Dataset in use")
        expect(picker).to_have_value(tiny_data.name, timeout=30_000)
        picker.click()
        page.get_by_role("option", name=DEFAULT_DATA.name, exact=True).click()
        # the picker changes in the browser at once; the Home page's metric changes only once the
        # server has rerun the script, which saved the choice first
        metric = page.get_by_test_id("stMetric").filter(has_text="Dataset in use")
        expect(metric.get_by_test_id("stMetricValue")).to_have_text(DEFAULT_DATA.name, timeout=30_000)
        visit(page, url, "Data", "readable images")  # a new session opens on the switched dataset
        expect(page.get_by_role("combobox", name="Dataset in use")).to_have_value(DEFAULT_DATA.name)
    assert json.loads((cache_dir / "ui.json").read_text())["dataset"] == str(DEFAULT_DATA)
