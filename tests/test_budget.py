"""The budget answer end to end on a real learning curve of the tiny dataset: the CLI contract,
per-class slices, the allocation check, the offline report, and the pages."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.answers import budget, curves
from core.answers.budget.report import FamilyScore
from core.base.intervals import wilson
from core.base.locks import try_lock
from core.base.paths import write_json
from core.data.splits import SliceSpec
from core.engine.pipeline import prepare, train_run
from core.store import runs
from tests.apptest import open_page, texts
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    browser_page,
    need_chromium,
    screenshot,
    serve,
    wait_rendered,
)
from tests.command import CURVE_SWEEP, core
from tests.quick import quick_run

pytestmark = pytest.mark.train
GRID = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200, 300, 500)


def test_the_curve_preset_varies_which_images_are_labelled(curve_cache, curve_data):
    rows = json.loads(core(curve_cache, *CURVE_SWEEP, "--data", str(curve_data)).stdout)
    slices = list(dict.fromkeys(r["config"]["slice"] for r in rows))
    assert slices == [*(f"{n}/class" for n in (1, 2, 3, 5, 8, 13, 20, 30, 50, 80)), "100%"]
    assert {(r["config"]["sample_seed"], r["config"]["seed"]) for r in rows} == {(1, 1), (2, 1), (3, 1)}
    assert all(r["cached"] for r in rows), "the fixture trained them; asking again trains nothing"


def test_budget_json_carries_the_contract(curve_cache, curve_data):
    done = core(
        curve_cache, "budget", "--data", str(curve_data), "--target", "0.9", "--accuracy-at", "1000", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["target"] == 0.9
    assert report["contradicted"] is None  # 90% is beyond every slice measured here
    assert isinstance(report["beyond_reach"], bool)
    if report["images_per_class"] is None:
        assert report["reason"], "no estimate without a reason"
    else:
        assert set(report["images_per_class"]) == {"estimate", "low", "high"}
        e = report["images_per_class"]
        assert e["low"] <= e["estimate"] <= e["high"]
    assert [p["images_per_class"] for p in report["points"]] == [1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 120]
    # three sample seeds a slice; the whole pool is the same images whatever the seed: trained once
    assert [p["runs"] for p in report["points"]] == [3] * 10 + [1]
    backtest = report["backtest"]
    assert {"fit_up_to", "rows", "mean_abs_error", "coverage"} <= set(backtest)
    for row in backtest["rows"]:
        assert {"images_per_class", "measured", "predicted", "low", "high", "inside"} <= set(row)
        assert row["images_per_class"] > backtest["fit_up_to"]
    assert set(report["accuracy_at"]) >= {"estimate", "low", "high"}
    assert report["ceiling"] is None or set(report["ceiling"]) == {"estimate", "low", "high"}
    assert isinstance(backtest["calibrated"], bool)
    assert report["reliable_up_to"] == budget.RELIABLE_MULTIPLE * 120
    families = report["families"]
    assert set(families) == set(curves.FAMILIES)
    assert sum(f["weight"] for f in families.values()) == pytest.approx(1)
    assert all(f["backtest_error"] is None or f["backtest_error"] >= 0 for f in families.values())
    assert report["point_family"] == "power_law"  # the point is the power law's, the interval everyone's
    if report["images_per_class"] is not None:
        assert report["images_per_class"]["estimate"] == pytest.approx(report["per_family"]["power_law"])
    plateau = report["plateau"]
    assert plateau is None or (set(plateau) == {"since", "accuracy", "verdict"} and plateau["verdict"])


def test_a_curve_that_stopped_paying_gets_a_verdict_and_a_rising_one_does_not():
    rising = [curves.Observation(n, 0.9 - 0.4 * n**-0.5 + 0.001 * s, s) for n in GRID for s in range(3)]
    flat = [
        curves.Observation(n, min(0.9 - 0.4 * n**-0.5, 0.85) + 0.002 * s, s) for n in GRID for s in range(3)
    ]
    assert budget.find_plateau(curves.curve_points(rising, floor=budget.PLATEAU_VAR_FLOOR)) is None
    found = budget.find_plateau(curves.curve_points(flat, floor=budget.PLATEAU_VAR_FLOOR))
    assert found.since == 80, "0.9 - 0.4 / sqrt(n) passes 0.85 at 64 per class: flat from the next slice"
    assert found.verdict.startswith("Accuracy has not moved beyond noise since about 80 images per class")
    assert "consider fine-tuning" in found.verdict
    mean = np.mean([p.mean for p in curves.curve_points(flat) if p.n >= 80])
    assert f"(right {mean:.1%} of the time on average since)" in found.verdict  # percent, as the page
    held = budget.find_plateau(curves.curve_points(flat, floor=budget.PLATEAU_VAR_FLOOR), n_holdout=600)
    interval = wilson(mean * 600, 600)  # a number from a finite holdout carries its interval
    assert (
        f"(right {mean:.1%} of the time on average since, 95% interval {interval.low:.1%} to " in held.verdict
    )
    tuned = budget.find_plateau(curves.curve_points(flat, floor=budget.PLATEAU_VAR_FLOOR), crossover="10%")
    assert "fine-tuning beat this head from 10% on this data" in tuned.verdict


# Holdout accuracy of each sample seed, AdamW heads (20 epochs, lr 0.01) on the 60,000 Fashion-MNIST
# training images, from 30 per class up (bench/results/gallery.json, "fm60k (lr 0.01)"): it rises
# to about 300 per class and stays there; one 2,000-per-class run fell to 0.8045.
ADAMW_FM60K = {
    30: (0.7787, 0.7902, 0.7715),
    50: (0.797, 0.8057, 0.801),
    80: (0.8067, 0.8192, 0.8187),
    130: (0.8235, 0.8335, 0.8292),
    200: (0.8402, 0.8437, 0.8418),
    300: (0.8408, 0.8565, 0.847),
    500: (0.8495, 0.8603, 0.85),
    800: (0.8555, 0.8637, 0.8515),
    1300: (0.8597, 0.8512, 0.8542),
    2000: (0.8375, 0.86, 0.8045),
    3000: (0.8535, 0.859, 0.861),
    4800: (0.8565, 0.8565, 0.8565),
}


def test_a_plateau_starts_where_the_later_slices_stop_beating_it_despite_one_noisy_slice():
    observed = [curves.Observation(n, a, s) for n, seeds in ADAMW_FM60K.items() for s, a in enumerate(seeds)]
    found = budget.find_plateau(curves.curve_points(observed, floor=budget.PLATEAU_VAR_FLOOR))
    assert found.since == 300, "130 and 200 stand 2 and 1 points below every later slice on average"
    assert found.verdict.startswith("Accuracy has not moved beyond noise since about 300 images per class")


def test_budget_per_class_shares_the_labels(curve_cache, curve_data):
    done = core(
        curve_cache,
        "budget",
        "--data",
        str(curve_data),
        "--target",
        "0.9",
        "--per-class",
        "--budget",
        "30",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["allocation"]) == {"T-shirt_top", "Pullover", "Coat", "Shirt"}
    assert sum(report["allocation"].values()) <= 30
    for key in ("expected_gain", "even_gain"):
        assert set(report[key]) == {"estimate", "low", "high"}
    text = core(curve_cache, "budget", "--data", str(curve_data), "--target", "0.9").stdout
    assert "To reach 90%" in text and "Backtest" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "1.5"], "error: --target must be between 0 and 1, not "),
        (["--target", "0"], "error: --target must be between 0 and 1, not "),
        (["--target", "0.9", "--per-class"], "error: --per-class needs --budget N"),
        (["--target", "0.9", "--experiment", "resnet"], "error: --experiment 'resnet' matches none"),
        (["--target", "0.9", "--fit-up-to", "nan"], "error: --fit-up-to must be a positive number of images"),
        (["--target", "0.9", "--fit-up-to", "0"], "error: --fit-up-to must be a positive number of images"),
        (["--target", "0.9", "--accuracy-at", "inf"], "error: --accuracy-at must be a positive number of"),
        (["--target", "0.9", "--budget", "10"], "error: --budget needs --per-class"),
        (["--target", "0.9", "--holdout", "1.5"], "error: --holdout (1.5) and --val (0.1) are shares"),
    ],
)
def test_budget_bad_input_is_one_line_and_exit_2(curve_cache, curve_data, args, message):
    done = core(curve_cache, "budget", "--data", str(curve_data), *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1


def test_budget_without_runs_or_with_too_few_slices_says_what_to_run(tiny_data, other_data, cache_dir):
    done = core(cache_dir, "budget", "--data", str(other_data), "--target", "0.9")
    assert done.returncode == 2 and "error: no cached runs for" in done.stderr
    assert "python -m core sweep --preset curve" in done.stderr
    for text in ("1/class", "3/class"):
        train_run(quick_run(tiny_data, slice=text), cache_dir)
    done = core(cache_dir, "budget", "--data", str(tiny_data), "--target", "0.9")
    assert done.returncode == 2
    assert done.stderr.startswith("error: too few slices to fit a learning curve: 2 measured")


def test_a_per_class_slice_is_nested_in_the_sample_order(tiny_data, cache_dir):
    spec = "Bag=5;*=2"
    base = prepare(quick_run(tiny_data, slice="2/class", sample_seed=3), cache_dir)
    custom = prepare(quick_run(tiny_data, slice=spec, sample_seed=3), cache_dir)
    labels = base.dataset.labels
    assert np.bincount(labels[custom.train_indices]).tolist() == [5, 2, 2]  # Bag, Sneaker, Trouser
    assert set(base.train_indices) <= set(custom.train_indices)
    assert str(SliceSpec.parse(" *=2 ; Bag=5")) == spec
    with pytest.raises(Exception, match="names class\\(es\\) Cat that the dataset does not have"):
        prepare(quick_run(tiny_data, slice="Cat=3;*=1"), cache_dir)
    with pytest.raises(Exception, match="gives no count for class 'Sneaker'"):
        prepare(quick_run(tiny_data, slice="Bag=3;Trouser=2"), cache_dir)


def test_the_usual_experiment_is_the_default_when_another_is_measured_alike(
    curve_cache, curve_data, tmp_path
):
    """An AdamW curve over the same slices and seeds sorts first by its label ("3 ep" before
    "L-BFGS"); the answer still opens on the L-BFGS head a dataset is first trained with."""
    cache = tmp_path / "two"
    shutil.copytree(curve_cache, cache)
    done = core(cache, *CURVE_SWEEP, "--solver", "adamw", "--data", str(curve_data))
    assert done.returncode == 0, done.stderr
    done = core(cache, "budget", "--data", str(curve_data), "--target", "0.9", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["experiment"] == "efficientnet_lite0 · frozen · aug none · L-BFGS · 64 px"
    adamw = budget.select(cache, curve_data, "3 ep")
    assert adamw.experiments[0] != adamw.experiment and adamw.experiments[1] == adamw.experiment


def test_checking_an_allocation_trains_both_and_measures_the_gain(curve_cache, curve_data, tmp_path):
    cache = tmp_path / "check"
    shutil.copytree(curve_cache, cache)
    selection = budget.select(cache, curve_data)
    plan = budget.check_plan(selection, "20/class", 20)
    counts = SliceSpec.parse(plan.suggested).counts
    assert sum(n for _, n in counts) == 4 * 20 + 20 and all(n <= 120 for _, n in counts), "within the pool"
    assert dict(SliceSpec.parse(plan.even).counts) == {
        "Coat": 25,
        "Pullover": 25,
        "Shirt": 25,
        "T-shirt_top": 25,
    }
    assert [r.measured for r in budget.check_results(selection, plan)] == [None, None]
    for config in plan.configs(selection):
        train_run(config, cache)
    selection = budget.select(cache, curve_data)
    measured = budget.check_results(selection, plan)
    assert [(r.runs, r.planned) for r in measured] == [(3, 3), (3, 3)]
    accuracy = {(s.config.slice, s.config.sample_seed): s.accuracy for s in selection.summaries}
    for row, text in zip(measured, (plan.suggested, plan.even), strict=True):
        gains = [accuracy[text, seed] - accuracy[plan.base, seed] for seed in plan.sample_seeds]
        assert row.measured.estimate == pytest.approx(np.mean(gains)), "over the same sample seeds"
        assert row.measured.high - row.measured.low > 0.02, "60 holdout images: never a zero-width gain"


def test_the_report_opens_offline_with_charts_and_no_request(curve_cache, curve_data, tmp_path):
    need_chromium()
    out = tmp_path / "report.html"
    done = core(curve_cache, "report", "--data", str(curve_data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "How much data does" in text and "Backtest" in text and "data:image/png;base64," in text
    assert "http://" not in text.split("<script>")[0] and 'src="http' not in text
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True)
        page = context.new_page()
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(out.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 2, "the learning curve and the holdout bars"
        curve, bars = page.locator(".js-plotly-plot").nth(0), page.locator(".js-plotly-plot").nth(1)
        assert curve.locator(".scatterlayer .points path").count() >= 6, "a marker per measured slice"
        assert bars.locator(".bars .bartext").count() == 11, "a labelled bar per slice"
        wrong = budget_mistakes(curve_cache, curve_data)
        assert page.locator(".cams img").count() == 3 * min(4, wrong), "image, predicted CAM, true CAM"
        browser.close()
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []


def budget_mistakes(cache: Path, data: Path) -> int:
    """Holdout mistakes of the run the report shows: the largest slice, first seeds."""
    selection = budget.select(cache, data)
    largest = max(selection.summaries, key=lambda s: (s.n_train, -s.config.sample_seed, -s.config.seed))
    return int(len(largest.classes) and (1 - largest.accuracy) * largest.n_holdout + 0.5)


def test_learning_curve_page_answers_and_backtests(curve_cache, curve_data, monkeypatch):
    app = open_page(curve_cache, "pages/6_Learning_curve.py", monkeypatch, curve_data)
    assert "Backtest (fitted up to" in texts(app)
    assert len(app.get("plotly_chart")) == 1
    app.number_input(key="curve_target").set_value(50.0).run()
    assert "To reach **50%**: about" in texts(app)
    app.number_input(key="curve_target").set_value(99.0).run()
    assert "To reach 99%: no estimate." in texts(app) or "To reach **99%**" in texts(app)


def test_learning_curve_page_on_a_dataset_without_runs_offers_the_sweep(cache_dir, other_data, monkeypatch):
    app = open_page(cache_dir, "pages/6_Learning_curve.py", monkeypatch, other_data)
    assert "no cached runs for" in texts(app)
    with try_lock(cache_dir / "jobs" / "worker.lock"):  # as if a worker were busy: nothing trains here
        app.button(key="curve_queue").click().run()
    assert "runs queued" in texts(app)


def test_label_next_page_plans_and_checks(curve_cache, curve_data, tmp_path, monkeypatch):
    cache = tmp_path / "pages"
    shutil.copytree(curve_cache, cache)
    app = open_page(cache, "pages/7_Label_next.py", monkeypatch, curve_data)
    assert "Predicted gain in holdout accuracy" in texts(app)
    app.selectbox(key="label_base").set_value("20/class").run()
    plan = budget.check_plan(budget.select(cache, curve_data), "20/class", 40)
    with try_lock(cache / "jobs" / "worker.lock"):
        app.button(key="label_check").click().run()
    assert f"{len({plan.suggested, plan.even}) * 3} runs queued" in texts(app)


def test_quiz_page_hides_then_reveals(curve_cache, curve_data, monkeypatch):
    app = open_page(curve_cache, "pages/8_Quiz.py", monkeypatch, curve_data)
    assert not app.dataframe, "answers stay hidden until Reveal"
    app.button(key="quiz_reveal").click().run()
    answers = app.dataframe[0].value
    assert list(answers.columns)[:3] == ["images per class", "your guess", "measured"]
    assert "1" in answers["images per class"].tolist()


def test_runs_of_another_split_are_another_curve(curve_cache, curve_data):
    selection = budget.select(curve_cache, curve_data)
    assert {s.config.holdout for s in selection.summaries} == {0.1}
    with pytest.raises(Exception, match="no cached runs"):
        budget.select(curve_cache, curve_data, holdout=0.25)
    assert runs.list_runs(curve_cache)


@pytest.mark.browser
def test_the_answer_in_a_real_browser(curve_cache, curve_data, tmp_path):
    """Learning curve, Label next and Quiz served by streamlit in Chromium: the answer and its
    chart, a report downloaded from the button, the quiz revealed."""
    need_chromium()
    cache = tmp_path / "served"
    shutil.copytree(curve_cache, cache)
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    with serve(cache) as url, browser_page() as page:
        page.goto(f"{url}/Learning_curve", wait_until="domcontentloaded")
        page.get_by_text("How far to trust it").wait_for(timeout=120_000)
        wait_rendered(page)
        chart = page.locator(".js-plotly-plot").first
        chart.locator(".scatterlayer .points path").nth(10).wait_for(timeout=30_000)
        assert page.get_by_text(re.compile(r"To reach (\*\*)?\d+(\.\d)?%")).count() >= 1
        box = page.get_by_label("Target holdout accuracy (%)")
        box.fill("50")
        box.press("Enter")
        page.get_by_text(re.compile(r"To reach 50%: about [\d,]+ \(80% interval")).wait_for(timeout=60_000)
        wait_rendered(page)
        screenshot(page, "9-learning-curve")
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name=re.compile("Download this as a report")).click()
        saved = tmp_path / "report.html"
        download.value.save_as(saved)
        assert "How much data does" in saved.read_text()

        page.goto(f"{url}/Label_next", wait_until="domcontentloaded")
        page.get_by_text("Predicted gain in holdout accuracy").wait_for(timeout=120_000)
        wait_rendered(page)
        screenshot(page, "10-label-next")

        page.goto(f"{url}/Quiz", wait_until="domcontentloaded")
        page.get_by_role("button", name="Reveal").wait_for(timeout=120_000)
        page.get_by_role("button", name="Reveal").click()
        page.get_by_text("Right and at least 80% sure:").wait_for(timeout=60_000)
        wait_rendered(page)
        screenshot(page, "11-quiz")


def test_the_families_table_marks_the_family_whose_fit_is_the_point():
    lines = budget.family_lines(
        (FamilyScore("piecewise_power_law", 0.35, 0.009), FamilyScore("power_law", 0.17, 0.012, point=True))
    )
    assert [(line.family, line.weight, line.miss) for line in lines] == [
        ("piecewise power law", "0.35", "0.9 points"),
        ("power law (the point)", "0.17", "1.2 points"),
    ]
