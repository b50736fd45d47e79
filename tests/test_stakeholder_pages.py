"""The Holdout, Trust and Audit pages as a room reads them (issue 22, items 4 to 6): one form of
label on an axis in the order of the amounts, every share with its interval on the page (checked
against a Wilson interval worked out here from the counts), plain sentences where a number would
be misread, and no box that contradicts what the page already did."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from core.answers import budget
from core.base.words import counted
from core.engine.pipeline import sweep
from core.present.figures import LOG_AXIS
from core.store import runs
from tests.apptest import open_page, texts
from tests.quick import quick_run

pytestmark = pytest.mark.train

# curve slices, shares and a per-class slice (how a suggested allocation is checked) in one
# experiment, each with how the page names it (the tiny dataset's pools hold 10 images per class)
WORDS = {
    "1/class": "1 per class",
    "Bag=2;Sneaker=2;Trouser=2": "2 per class (set class by class)",
    "3/class": "3 per class",
    "50%": "5 per class (50%)",
    "100%": "10 per class (100%)",
}
CELL = re.compile(r"^(\d+)% \((\d+)% to (\d+)%\)$")


@pytest.fixture(scope="module")
def mixed(tiny_data, tmp_path_factory) -> Path:
    """The tiny dataset's runs over :data:`MIXED`, two seeds each."""
    cache = tmp_path_factory.mktemp("mixed")
    sweep(quick_run(tiny_data, epochs=3), list(WORDS), [1, 2], cache)
    return cache


def by_hand(successes: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval, written out."""
    z = 1.959963984540054
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_the_holdout_chart_reads_as_one_axis_of_images_per_class(mixed, tiny_data, monkeypatch):
    app = open_page(mixed, "pages/4_Holdout.py", monkeypatch, tiny_data)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    axis = spec["layout"]["xaxis"]
    assert axis["tickangle"] == 0, "labels stay level, never turned and cut"
    assert axis["title"]["text"] == "training images per class"
    shown = [label.replace("<br>", " ") for label in axis["categoryarray"]]
    expected = [w.replace(" per class", "").replace("set class by class", "by class") for w in WORDS.values()]
    assert shown == expected, "fewest images per class first, every label a count of images per class"
    assert all("/class" not in label and "=" not in label for label in shown)
    warning = next(w.value for w in app.warning if "cannot be told apart" in w.value)
    assert "1 per class and 10 per class (100%)" in warning, "the largest is the one with most images"
    legend = {trace["name"] for trace in spec["data"] if trace.get("showlegend", True)}
    words = "EfficientNet-Lite0, backbone frozen, a new head trained, no augmentation, 64 px images"
    assert legend == {words}, "the experiment in words, not its label"


def test_the_seed_whiskers_show_on_the_bars(mixed):
    from core.present import figures
    from core.store.tables import holdout_bars, runs_frame, slice_order

    frame = runs_frame(runs.list_runs(mixed))
    bar = figures.holdout_bars(holdout_bars(frame), slice_order(frame)).data[0]
    red, green, blue = (int(bar.marker.color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    seen = [a * c + (1 - a) * 255 for a, c in zip([bar.marker.opacity] * 3, (red, green, blue), strict=True)]
    whisker = int(bar.error_y.color.lstrip("#")[:2], 16)

    def luminance(channels) -> float:
        linear = [
            (c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4) for c in channels
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    contrast = (luminance(seen) + 0.05) / (luminance([whisker] * 3) + 0.05)
    assert contrast >= 4.5, f"a black whisker on the bar's colour: contrast {contrast:.1f}"


def test_every_threshold_table_cell_carries_its_wilson_interval(mixed, tiny_data, monkeypatch):
    app = open_page(mixed, "pages/4_Holdout.py", monkeypatch, tiny_data)
    table = app.table[0].value.set_index("training data")
    assert table.index.tolist() == list(WORDS.values())
    numbers = [c for c in table.columns if "%" in c or c.startswith("accuracy")]
    assert not [c for c in table.columns if re.search(r"P\(true\)|@|argmax|selective", c)], table.columns
    by_slice: dict[str, list] = {}
    for summary in runs.list_runs(mixed):
        by_slice.setdefault(summary.config.slice, []).append(runs.load(mixed, summary.run_id).predictions())
    for text, label in WORDS.items():
        mine = by_slice[text]
        kept = [p.probs.max(1) >= 0.8 for p in mine]
        right = [p.probs.argmax(1) == p.labels for p in mine]
        counts = {
            "accuracy": ([r.sum() for r in right], [len(p.labels) for p in mine]),
            "accuracy of those decided alone": (
                [(r & k).sum() for r, k in zip(right, kept, strict=True)],
                [k.sum() for k in kept],
            ),
            "decided alone (at least 80% sure)": ([k.sum() for k in kept], [len(p.labels) for p in mine]),
        }
        for column, (successes, totals) in counts.items():
            cell = CELL.match(table.at[label, column])
            if not sum(totals):
                assert table.at[label, column] == "none"
                continue
            assert cell, f"{label}, {column}: {table.at[label, column]!r} has no interval"
            share, n = sum(successes) / sum(totals), max(1, round(sum(totals) / len(totals)))
            low, high = by_hand(share * n, n)
            assert cell.groups() == (f"{share:.0%}"[:-1], f"{low:.0%}"[:-1], f"{high:.0%}"[:-1]), (
                label,
                column,
            )
        for column in numbers:
            if table.at[label, column] != "none":
                value, low, high = map(int, CELL.match(table.at[label, column]).groups())
                assert low <= value <= high, (label, column)


JARGON = re.compile(r"argmax|P\(true\)|selective@|coverage@|Temperature|\bECE\b|\+-|±|[0-9a-f]{12}")


@pytest.fixture
def curve_copy(curve_cache, tmp_path) -> Path:
    return shutil.copytree(curve_cache, tmp_path / "cache")


def test_the_trust_page_shows_every_interval_in_plain_words(curve_copy, curve_data, monkeypatch):
    from core.answers import trust

    app = open_page(curve_copy, "pages/9_Trust.py", monkeypatch, curve_data)
    run_id = app.selectbox(key="trust_run").value
    measured = trust.run_calibration(curve_copy, run_id)
    wanted = app.number_input(key="trust_target").value
    experiment = budget.analyse(budget.select(curve_copy, str(curve_data), None))
    assert wanted == pytest.approx(100 * experiment.suggested_target()), "the target Present uses"
    plan = trust.run_threshold(curve_copy, run_id, wanted / 100)
    shown = texts(app)
    for value in (measured.ece, measured.ece_scaled):
        assert f"95% interval {value.low:.1%} to {value.high:.1%}" in shown, "on the page, not in a tooltip"
    assert not [m for m in app.metric if m.help], "no number hides its interval in a tooltip"
    if plan.threshold is not None:
        k, a = plan.kept_accuracy, plan.automated_share
        assert f"95% interval {k.low:.0%} to {k.high:.0%}" in shown
        assert f"would decide {a.estimate:.0%} of them alone" in shown, "the share automated in words"
    assert f"{measured.n_val} validation images" in shown
    assert not JARGON.search(shown + " ".join(m.label for m in app.metric)), JARGON.search(shown)
    assert not re.search(r"\b0\.\d{3}\b", shown + " ".join(m.value for m in app.metric)), "one unit: percent"
    axis = json.loads(app.get("plotly_chart")[1].proto.spec)["layout"]["xaxis"]
    assert axis["type"] == "log" and axis["ticktext"], "the log axis names its ticks"
    assert list(axis["ticktext"]) == LOG_AXIS["ticktext"], "1 2 5 10 20 50 ..., never bare minor digits"


def test_a_rescaling_that_made_calibration_worse_is_explained_by_the_validation_size(curve_copy, curve_data):
    import dataclasses

    from core.answers import trust
    from core.base.intervals import Estimate

    run_id = runs.list_runs(curve_copy)[0].run_id
    measured = trust.run_calibration(curve_copy, run_id)
    worse = dataclasses.replace(measured, ece=Estimate(0.10, 0.05, 0.2), ece_scaled=Estimate(0.162, 0.1, 0.3))
    said = worse.scaling_words()
    assert "less honest" in said and "16.2% against 10.0%" in said
    assert f"only {measured.n_val} validation images" in said, "why: the validation set's size"
    better = dataclasses.replace(
        measured, ece=Estimate(0.162, 0.1, 0.3), ece_scaled=Estimate(0.10, 0.05, 0.2)
    )
    assert "from 16.2% to 10.0%" in better.scaling_words()


def test_the_audit_says_how_many_flags_are_the_models_own_confusion(curve_copy, curve_data, monkeypatch):
    from core.answers import audit

    app = open_page(curve_copy, "pages/12_Audit.py", monkeypatch, curve_data)
    app.button(key="audit_start").click().run()
    assert not app.exception, app.exception
    assert not any("not been audited yet" in i.value for i in app.info), "audited: the box is gone"
    assert not [b for b in app.button if b.key == "audit_start"], "and its button with it"
    found = audit.cached(curve_copy, runs.list_runs(curve_copy)[0].info.fingerprint)
    totals: dict[str, int] = {}
    mixed: dict[tuple[str, str], int] = {}
    most = max(s.n_train for s in runs.list_runs(curve_copy))
    best_models = [s for s in runs.list_runs(curve_copy) if s.n_train == most]
    for summary in best_models:
        for t, row in enumerate(summary.holdout.confusion):
            totals[summary.classes[t]] = totals.get(summary.classes[t], 0) + sum(row)
            for p, n in enumerate(row):
                key = (summary.classes[t], summary.classes[p])
                mixed[key] = mixed.get(key, 0) + n * (p != t)
    confused = {pair for pair, n in mixed.items() if n / totals[pair[0]] >= 0.1}
    by_hand = [
        i for i in found.label_issues
        if {(i.given, i.suggested), (i.suggested, i.given)} & confused or 1 - i.score >= 0.25
    ]  # fmt: skip
    flagged = len(found.label_issues)
    assert flagged, "the curve dataset's look-alike classes give flags"
    assert f"{len(by_hand)} of the {flagged} flagged images" in texts(app)
    table = app.dataframe[0].value
    whole = re.compile(r"(about \d+|\d+|under 1) of 15")
    assert all(whole.fullmatch(cell) for cell in table["holdout images per run"]), (
        "per run in whole images, out of the class's 15 holdout images: never a sum over runs"
    )
    assert all(CELL.match(cell) for cell in table["share of the true class"]), "each share with its interval"
    models = counted(len(best_models), "model")
    said = f"The experiment's {models} trained on the most labels ({most:,} images)"
    assert said in texts(app), "what more labels did not cure, not 1-image models"
