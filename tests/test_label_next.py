"""Label next never contradicts itself: the words, the table, the predicted gain and the check
button all state the same numbers (issue 22, item 1).

Core logic by plain unit tests on synthetic per-class curves (a textile-like set where no class
rises measurably, one weak flat class beside a steep one, a class that takes leftovers); the page
by AppTest on the real learning-curve cache, reading what a user reads.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from core.answers import budget, curves
from core.base.intervals import Estimate
from core.base.locks import try_lock
from core.base.words import counted
from core.present import figures
from core.serving import jobs
from core.store import runs
from tests.apptest import open_page, texts
from tests.test_curves import FAST, synthetic

HELD = 10  # holdout images per class, as on the textile walkthrough


def flat(recall: float, counts=(3, 5, 10, 20, 30)) -> list[curves.Observation]:
    """Three runs per count whose recall wobbles by a few points around ``recall``: no rise."""
    return [
        curves.Observation(n, recall + 0.03 * (s - 1) * (-1) ** i, s, 0)
        for i, n in enumerate(counts)
        for s in range(3)
    ]


def note_of(allocation: curves.Allocation, name: str) -> str:
    return next(note for note in allocation.notes if note.startswith(f"{name}:"))


def test_no_class_rising_gives_the_even_split_with_no_gain_and_says_so():
    """The walkthrough: every class flat, the weakest at 40%. The old page said each class 'gets no
    labels: they would buy nothing' beside a table of +10 each, and '+0.00 points (+0.00 to +0.00)'."""
    per_class = {"global_defect": flat(0.9), "local_defect": flat(0.4), "ok": flat(0.7)}
    result = curves.allocate(
        per_class,
        dict.fromkeys(per_class, 1 / 3),
        dict.fromkeys(per_class, 30),
        30,
        holdout_counts=dict.fromkeys(per_class, HELD),
        **FAST,
    )
    assert result.even_fallback and result.extra == result.even_extra == dict.fromkeys(per_class, 10)
    assert result.expected_gain is None and result.even_gain is None, "no zero-width interval"
    said = " ".join(result.notes)
    for word in ("plateau", "buy nothing", "no labels", "+-"):
        assert word not in said
    for name in per_class:
        assert "It gets its even share: 10 labels." in note_of(result, name), "the table's number"
    halves = "40.0% over 3-5/class, 40.0% over 20-30/class"
    assert halves in note_of(result, "local_defect"), "the weak class's recall by the halves compared"
    assert budget.NO_GAIN in budget.gain_sentence(result)
    assert result.to_dict()["expected_gain"] == {"estimate": None, "low": None, "high": None}


def test_a_flat_weak_class_beside_a_rising_one_gets_none_and_the_note_says_none():
    per_class = {"weak": flat(0.4, (1, 3, 8, 20, 50, 80)), "steep": synthetic("power_law", (0.95, 0.8, 0.4))}
    result = curves.allocate(
        per_class,
        {"weak": 0.5, "steep": 0.5},
        {"weak": 80, "steep": 80},
        40,
        holdout_counts={"weak": HELD, "steep": 200},
        **FAST,
    )
    assert result.extra == {"weak": 0, "steep": 40} and not result.even_fallback
    assert "so it gets none (an even split would give it 20)" in note_of(result, "weak")
    for gain in (result.expected_gain, result.even_gain):
        assert gain is not None and gain.low < gain.high, "an interval of positive width"
        assert gain.low <= gain.estimate <= gain.high


def test_labels_the_rising_class_has_no_room_for_are_counted_in_the_flat_class_note():
    per_class = {"weak": flat(0.4, (1, 3, 8, 20, 50, 80)), "steep": synthetic("power_law", (0.95, 0.8, 0.4))}
    result = curves.allocate(
        per_class,
        {"weak": 0.5, "steep": 0.5},
        {"weak": 80, "steep": 80},
        30,
        room={"weak": 100, "steep": 5},
        holdout_counts={"weak": HELD, "steep": 200},
        **FAST,
    )
    assert result.extra == {"weak": 25, "steep": 5}
    assert "25 labels." in note_of(result, "weak"), "the table's 25, not 'no labels'"


def test_gains_are_stated_in_points_with_an_interval_or_say_why_not():
    assert budget.points_stated(Estimate(0.012, 0.004, 0.02)) == "+1.2 points (+0.4 to +2.0)"
    assert budget.points_stated(None) == "no estimate"
    assert "no interval" in budget.points_stated(Estimate(-0.1, math.nan, math.nan))


@pytest.mark.parametrize(
    ("measured", "verdict"),
    [(None, "not trained yet"), (-0.1, "below the forecast"), (0.01, "inside the forecast"), (0.1, "above")],
)
def test_a_measured_gain_says_where_it_falls_against_the_forecast(measured, verdict):
    found = None if measured is None else Estimate(measured, measured - 0.01, measured + 0.01)
    row = budget.CheckResult("as suggested", "a=3;b=3", Estimate(0.01, 0.0, 0.02), found, 3, 3)
    assert row.verdict.startswith(verdict)
    assert dataclasses.replace(row, predicted=None).verdict in (
        "not trained yet",
        "no forecast to compare with",
    )


def test_the_log_axis_labels_every_tick_in_full():
    assert figures.LOG_AXIS["ticktext"][:9] == ["1", "2", "5", "10", "20", "50", "100", "200", "500"]
    assert figures.LOG_AXIS["ticktext"][9:12] == ["1k", "2k", "5k"]
    point = budget.ClassPoint(3, Estimate(0.4, 0.2, 0.6))
    figure = figures.per_class_curves({"ok": (point, dataclasses.replace(point, n=30))})
    assert list(figure.layout.xaxis.tickvals) == figures.LOG_TICKS and figure.layout.yaxis.tickformat == ".0%"
    assert list(figure.data[0].error_y.array) == pytest.approx([0.2, 0.2]), "the interval on the page"


@pytest.fixture
def page_cache(curve_cache, tmp_path):
    cache = tmp_path / "label-next"
    shutil.copytree(curve_cache, cache)
    return cache


def shares(app) -> dict[str, tuple[int, int]]:
    table = app.dataframe[0].value
    return {
        name: (int(extra), int(even))
        for name, extra, even in zip(
            table["class"], table["suggested extra"], table["even extra"], strict=True
        )
    }


def assert_agrees(app) -> None:
    """What a user reads: every class's note states the table's number, every gain has an interval
    of positive width or says there is no estimate, and no jargon."""
    said = texts(app)
    for name, (extra, even) in shares(app).items():
        for note in (line for line in said.splitlines() if line.startswith(f"- {name}:")):
            assert counted(extra, "label") in note or (extra == 0 and f"would give it {even})" in note), note
    for low, high in re.findall(r"\(([+-][\d.]+) to ([+-][\d.]+)\)", said):
        assert float(low) < float(high), said
    assert "Predicted gain in holdout accuracy" in said
    for jargon in ("+-", "argmax", " · ", "plateau"):
        assert jargon not in said


@pytest.mark.train
def test_label_next_plans_with_text_table_and_gain_in_agreement(page_cache, curve_data, monkeypatch):
    app = open_page(page_cache, "pages/7_Label_next.py", monkeypatch, curve_data)
    assert_agrees(app)
    assert sum(extra for extra, _ in shares(app).values()) == 40


@pytest.mark.train
def test_label_next_button_queues_the_runs_it_counts(page_cache, curve_data, monkeypatch):
    """From 2 per class no class has 3 counts to draw a curve: the suggestion is the even split, the
    gain has no estimate, and the check trains that one slice over 3 samples (the old button said 6)."""
    app = open_page(page_cache, "pages/7_Label_next.py", monkeypatch, curve_data)
    app.selectbox(key="label_base").set_value("2/class").run()
    assert not app.exception, app.exception
    assert_agrees(app)
    assert all(extra == even for extra, even in shares(app).values())
    assert budget.NO_GAIN in texts(app)
    count = int(re.search(r"\((\d+) runs\)", app.button(key="label_check").label).group(1))
    with try_lock(page_cache / "jobs" / "worker.lock"):
        app.button(key="label_check").click().run()
    assert not app.exception, app.exception
    waiting = [job for job in jobs.list_jobs(page_cache) if job.state in ("queued", "cached")]
    assert count == len(waiting) == 3 and f"{count} runs queued" in texts(app)


def right(cache, run_id: str) -> np.ndarray:
    """1 for each holdout image the run got right, else 0, read from its predictions file."""
    frame = pd.read_csv(runs.load(cache, run_id).folder.predictions)
    return (frame["pred"] == frame["true"]).to_numpy(dtype=float)


@pytest.mark.train  # it reads the curve sweep's runs
def test_a_measured_gain_carries_an_interval_over_the_holdout_images(page_cache, curve_data):
    """Three seeds that gained the same image have no spread between them: the interval is over
    the holdout images the gain was measured on, each one's change averaged over the seeds."""
    selection = budget.select(page_cache, curve_data)
    plan = dataclasses.replace(
        budget.check_plan(selection, "13/class", 28), suggested="30/class", even="20/class"
    )
    assert not plan.configs(selection), "both slices are measured: nothing left to queue"
    by = {(s.config.slice, s.config.sample_seed): s for s in selection.summaries}
    gains = np.array([by["30/class", s].accuracy - by["13/class", s].accuracy for s in plan.sample_seeds])
    changes = np.mean(
        [
            right(page_cache, by["30/class", s].run_id) - right(page_cache, by["13/class", s].run_id)
            for s in plan.sample_seeds
        ],
        axis=0,
    )
    assert len(changes) == 60, "the curve set's 60 holdout images"
    half = student_t.ppf(0.9, len(changes) - 1) * changes.std(ddof=1) / math.sqrt(len(changes))
    row = budget.check_results(selection, plan)[0]
    assert (row.runs, row.planned) == (3, 3)
    assert row.measured.estimate == pytest.approx(gains.mean())
    assert (row.measured.low, row.measured.high) == pytest.approx((gains.mean() - half, gains.mean() + half))


@pytest.mark.train
def test_a_gain_where_no_holdout_image_changed_still_has_an_interval(page_cache, curve_data):
    """No image changed: not "+0.0 (+0.0 to +0.0)" but the share that could have changed unseen."""
    same = budget.select(page_cache, curve_data).summaries[0]
    gain = budget.paired_gain(page_cache, [(same, same)], 0.8)
    bound = 1 - 0.1 ** (1 / same.n_holdout)
    assert (gain.estimate, gain.low, gain.high) == pytest.approx((0.0, -bound, bound))
    assert budget.points_stated(gain) == f"+0.0 points ({-100 * bound:+.1f} to {100 * bound:+.1f})"


def test_a_gain_under_half_a_point_even_at_its_top_is_called_not_worth_it():
    from core.base.intervals import Estimate

    tiny = curves.Allocation({"a": 5}, Estimate(0.0004, 0.0, 0.003), Estimate(0.0002, 0.0, 0.002), {"a": 5})
    said = budget.gain_sentence(tiny)
    assert "+0.0 points (+0.0 to +0.3)" in said and "would not buy a gain anyone could measure" in said
    real = curves.Allocation({"a": 5}, Estimate(0.02, 0.01, 0.03), Estimate(0.01, 0.0, 0.02), {"a": 5})
    assert "would not buy" not in budget.gain_sentence(real)


def test_a_perfect_recall_on_ten_holdout_images_is_never_stated_tighter_than_ten_images_allow():
    from core.answers.curves.allocation import recall_interval
    from core.answers.curves.fitting import Point

    perfect = Point(1, 1.0, 0.0, 3, 1e-6)  # three runs, all right on the class's 10 images
    assert recall_interval(perfect, 0.8).low > 0.99, "without the count: the runs' spread alone"
    said = recall_interval(perfect, 0.8, 10)
    assert said.high == 1.0 and 0.8 < said.low < 0.9, "80% Wilson interval of 10 of 10: 86% to 100%"
