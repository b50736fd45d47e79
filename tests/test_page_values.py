"""The numbers a page shows are the engine's, and where a number is simple enough, the same as
one computed here from the run's stored predictions without the engine: Holdout, Run, Trust,
Learning curve and Predict, on the shared learning-curve cache (one experiment, 11 slices x 3
sample seeds)."""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.answers import budget
from core.answers.cam import explain
from core.base.intervals import wilson
from core.base.paths import write_json
from core.present.figures import LOG_AXIS
from core.store import runs
from core.store.tables import bars_explained, slice_words
from tests.apptest import open_page
from tests.browser import browser_page, choose_dataset, need_chromium, serve, visit

pytestmark = pytest.mark.train


@pytest.fixture
def cache(curve_cache, tmp_path) -> Path:
    return shutil.copytree(curve_cache, tmp_path / "cache")


def test_holdout_accuracy_per_slice_is_the_mean_over_its_runs(cache, curve_data, monkeypatch):
    table = (
        open_page(cache, "pages/4_Holdout.py", monkeypatch, curve_data)
        .table[0]
        .value.set_index("training data")
    )
    by_slice: dict[str, list[float]] = {}
    for summary in runs.list_runs(cache):
        predictions = runs.load(cache, summary.run_id).predictions()
        by_slice.setdefault(slice_words(summary.config.slice, budget.images_per_class(summary)), []).append(
            np.mean(predictions.probs.argmax(1) == predictions.labels)
        )
    assert sorted(table.index) == sorted(by_slice)
    for label, accuracies in by_slice.items():
        assert table.at[label, "accuracy"].startswith(f"{np.mean(accuracies):.0%} ("), label


def test_the_run_page_shows_each_class_accuracy_of_the_chosen_run(cache, curve_data, monkeypatch):
    app = open_page(cache, "pages/11_Run.py", monkeypatch, curve_data)
    run_id = next(box for box in app.selectbox if box.key.startswith("run_pick::")).value
    predictions = runs.load(cache, run_id).predictions()
    shown = app.dataframe[0].value.set_index("class")
    for k, name in enumerate(predictions.classes):
        mine = predictions.labels == k
        hits = predictions.probs[mine].argmax(1) == k
        assert shown.at[name, "accuracy"] == pytest.approx(100 * np.mean(hits)), name
        interval = wilson(hits.sum(), len(hits))  # what the class's few holdout images allow
        assert shown.at[name, "95% interval"] == f"{interval.low:.0%} to {interval.high:.0%}", name


def test_the_trust_page_ece_is_the_top_label_calibration_error_of_the_runs_holdout(
    cache, curve_data, monkeypatch
):
    app = open_page(cache, "pages/9_Trust.py", monkeypatch, curve_data)
    predictions = runs.load(cache, app.selectbox(key="trust_run").value).predictions()
    confidence = predictions.probs.max(1)
    right = predictions.probs.argmax(1) == predictions.labels
    bins = np.minimum((confidence * 15).astype(int), 14)  # 15 equal-width bins, 1.0 in the top one
    ece = sum(
        abs(confidence[bins == b].mean() - right[bins == b].mean()) * np.sum(bins == b) / len(confidence)
        for b in np.unique(bins)
    )
    assert app.metric[0].label == "Calibration error as trained" and app.metric[0].value == f"{ece:.1%}"


def test_the_learning_curve_page_states_the_engines_answer(cache, curve_data, monkeypatch):
    app = open_page(cache, "pages/6_Learning_curve.py", monkeypatch, curve_data)
    analysis = budget.analyse(budget.select(cache, curve_data))
    target = round(min(p.accuracy for p in analysis.points[3:6]), 2)  # passed early: the curves reach it
    app.number_input(key="curve_target").set_value(100 * target).run()
    at = app.number_input(key="curve_at").value
    report = budget.report(analysis, target, float(at))
    assert report.needed.estimate is not None, report.needed.reason
    said = budget.stated(report.needed.estimate, report.level, ",.0f")
    assert f"about **{said}** images per class" in app.success[0].value
    n, answer = report.accuracy_at
    assert (
        budget.stated(answer.estimate, report.level) in app.info[0].value and f"{n:,.0f}" in app.info[0].value
    )
    assert f"To reach **{100 * target:g}%**" in app.success[0].value  # one unit on the page: percent
    shown = app.dataframe[0].value.values.tolist()
    assert shown == [list(astuple(line)) for line in budget.backtest_lines(report.backtest)]
    assert shown and all(cell.endswith("%") for row in shown for cell in row[1:3])


@pytest.mark.browser
def test_the_learning_curve_axis_labels_every_tick_once_in_plain_counts(cache, curve_data):
    """Plotly's own log ticks labelled the minor ticks by their first digit ("8 9 1 2 3 ... 10 2
    3"), which a room reads as nonsense; the axis shows 1 2 5 10 20 50 ... each once."""
    need_chromium()
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    with serve(cache) as url, browser_page() as browser:
        visit(browser, url, "Learning_curve", "images per class (log scale)")
        chart = browser.locator(".js-plotly-plot").first
        chart.locator(".xtick text").first.wait_for(timeout=60_000)
        ticks = chart.locator(".xtick text").all_text_contents()
    assert {"10", "100"} <= set(ticks) <= set(LOG_AXIS["ticktext"]), ticks
    assert len(ticks) == len(set(ticks)), ticks


@pytest.mark.browser
def test_the_predict_page_names_the_runs_top_classes_for_uploaded_images(cache, curve_data, tmp_path):
    need_chromium()
    images = sorted((curve_data / "Coat").iterdir())[:2]
    newest = runs.list_runs(cache)[0].run_id  # the page's default run: newest first
    expected = explain(cache, newest, [Image.open(path) for path in images])
    with serve(cache) as url, browser_page() as browser:
        choose_dataset(browser, url, curve_data, "600 readable images in 4 classes")
        visit(browser, url, "Predict", "Drop a few images")
        browser.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            [str(p) for p in images]
        )
        for path, answer in zip(images, expected, strict=True):
            top = ", ".join(f"{c} {p:.0%}" for c, p in answer.top)
            browser.get_by_text(re.compile(rf"{re.escape(path.name)}: {re.escape(top)}")).wait_for(
                timeout=120_000
            )


def test_the_html_report_states_the_same_answer_as_the_budget_command(cache, curve_data, tmp_path):
    from tests.command import core

    analysis = budget.analyse(budget.select(cache, curve_data))
    target = f"{min(p.accuracy for p in analysis.points[3:6]):.2f}"  # reached: there is a number
    answer = core(cache, "budget", "--data", str(curve_data), "--target", target, "--json")
    assert answer.returncode == 0, answer.stderr
    e = json.loads(answer.stdout)["images_per_class"]
    out = tmp_path / "report.html"
    done = core(cache, "report", "--data", str(curve_data), "--target", target, "--out", str(out))
    assert done.returncode == 0, done.stderr
    said = f"about {e['estimate']:,.0f} (80% interval {e['low']:,.0f} to {e['high']:,.0f}) images per class"
    assert said in out.read_text()


def test_the_report_shows_what_the_pages_show(cache, curve_data, monkeypatch):
    """The report once drew another run's mistakes than the Grad-CAM page's, captioned the
    holdout chart without its grey whisker, and showed "no estimate" in a green box."""
    from core.present.report_html import render

    report = render(cache, curve_data, target=0.99)  # beyond the curve's reach: no estimate
    assert '<p class="caveat">A holdout accuracy of 99%: no estimate.' in report
    assert html.escape(bars_explained(budget.select(cache, curve_data).n_holdout)) in report
    app = open_page(cache, "pages/5_Grad-CAM.py", monkeypatch, curve_data)
    shown = app.selectbox(key="cam_run").value
    slice_of = runs.load(cache, shown).summary.config.slice
    assert f"Grad-CAM of the {slice_of} run" in report
    largest = max(budget.curve_points(budget.select(cache, curve_data)), key=lambda p: p.images_per_class)
    assert slice_of == largest.slice
