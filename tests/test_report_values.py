"""Every number the HTML report states is one the engine earned: the report ``python -m core
report`` writes for the shared learning-curve cache (one experiment, 11 slices x 3 sample seeds) is
read back as text, and its counts, shares and intervals are checked against numbers computed here
from the dataset's folders and the runs' stored holdout predictions, and, for what only the curve
fit knows (the answer, the backtest's predictions), against :mod:`core.answers.budget` asked
directly. The report's structure and printing are tests/test_report_pdf.py's."""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from core.answers import budget
from core.base.intervals import Estimate, wilson
from core.store import runs
from core.store.record import Predictions, Summary
from core.store.tables import slice_words
from tests.command import core

pytestmark = pytest.mark.train  # the report needs the learning-curve sweep's runs

SURE = 0.8  # the report's "decided alone (at least 80% sure)" columns
CUTS = (0.5, 0.8)  # its "right and over 50% / 80% sure" columns
EXAMPLES = 4  # mistakes it shows


class ReportText(HTMLParser):
    """The report as a reader sees it: each section's text (scripts, styles and charts left out,
    runs of white space made one space), each table's rows of cell texts, and the captions."""

    SKIPPED = ("script", "style")
    BLOCKS = ("p", "h1", "h2", "h3", "td", "th", "figcaption")

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[list[str]] = []
        self.tables: list[list[list[str]]] = []
        self.captions: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        self.open.append(tag)
        if tag == "section":
            self.sections.append([])
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
        elif tag == "figcaption":
            self.captions.append("")

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop() != tag:
            pass  # an element closed by its parent's end (<p> inside <section>)
        if tag in self.BLOCKS and self.sections:
            self.sections[-1].append(" ")  # a block ends: its words do not run into the next

    def handle_data(self, data: str) -> None:
        if any(tag in self.SKIPPED for tag in self.open) or not self.sections:
            return
        self.sections[-1].append(data)
        if "td" in self.open or "th" in self.open:
            self.tables[-1][-1][-1] += data
        if "figcaption" in self.open:
            self.captions[-1] += data

    def text(self, section: int) -> str:
        """One section's words, as one line."""
        return " ".join("".join(self.sections[section]).split())

    def table(self, first_header: str) -> dict[str, list[str]]:
        """The table whose header row starts with ``first_header``: its rows by their first cell."""
        (found,) = [t for t in self.tables if t[0][0] == first_header]
        return {row[0]: row[1:] for row in found[1:]}


@dataclass(frozen=True)
class Scored:
    """A cached run and its stored holdout predictions."""

    summary: Summary
    predictions: Predictions

    @property
    def right(self) -> np.ndarray:
        """Which holdout images its top class gets right."""
        return self.predictions.probs.argmax(1) == self.predictions.labels

    @property
    def true_p(self) -> np.ndarray:
        """The probability each holdout image's true class gets."""
        p = self.predictions
        return p.probs[np.arange(len(p.labels)), p.labels]

    @property
    def per_class(self) -> float:
        """Training images per class: the slice's size over the classes (the sweep's are uniform)."""
        return self.summary.n_train / len(self.predictions.classes)


@pytest.fixture(scope="module")
def cache(curve_cache, tmp_path_factory) -> Path:
    """A copy of the sweep's cache: the report writes its Grad-CAM overlays into it."""
    return shutil.copytree(curve_cache, tmp_path_factory.mktemp("report-values") / "cache")


@pytest.fixture(scope="module")
def answer(cache, curve_data) -> budget.BudgetReport:
    """The budget engine's own answer, asked through the core API, for a target the measured
    curve passes early (so there is a number of images to state, not "no estimate")."""
    analysis = budget.analyse(budget.select(cache, curve_data))
    target = round(min(p.accuracy for p in analysis.points[3:6]), 2)
    found = budget.report(analysis, target)
    assert found.needed.estimate is not None, found.needed.reason
    return found


@pytest.fixture(scope="module")
def report(cache, curve_data, answer) -> ReportText:
    """The report as a user writes it, for the same target, read back."""
    out = cache.parent / "report.html"
    target = f"{answer.target:g}"
    done = core(cache, "report", "--data", str(curve_data), "--target", target, "--out", str(out))
    assert done.returncode == 0, done.stderr
    parsed = ReportText()
    parsed.feed(out.read_text())
    parsed.close()
    return parsed


@pytest.fixture(scope="module")
def scored(cache) -> list[Scored]:
    return [Scored(s, runs.load(cache, s.run_id).predictions()) for s in runs.list_runs(cache)]


def by_count(scored: list[Scored]) -> dict[float, list[Scored]]:
    """The runs by their training images per class."""
    found: dict[float, list[Scored]] = defaultdict(list)
    for run in scored:
        found[run.per_class].append(run)
    return found


def pooled(successes: list[int], totals: list[int]) -> Estimate:
    """A share over a slice's runs, pooled, with the 95% Wilson interval of as many images as one
    run is scored on (the seeds score the same holdout images: they do not multiply them)."""
    if not sum(totals):
        return wilson(0, 0)  # no image to share: no number
    share, n = sum(successes) / sum(totals), max(1, round(sum(totals) / len(totals)))
    bounds = wilson(share * n, n)
    return Estimate(share, bounds.low, bounds.high)


def cell(e: Estimate) -> str:
    """A share as the report's tables print it."""
    return "none" if np.isnan(e.estimate) else f"{e.estimate:.0%} ({e.low:.0%} to {e.high:.0%})"


def test_the_report_counts_the_images_and_the_sets_the_runs_were_scored_on(report, curve_data, scored):
    counts = {folder.name: len(list(folder.iterdir())) for folder in sorted(curve_data.iterdir())}
    n_holdout = {len(run.predictions.labels) for run in scored}
    n_val = {run.summary.n_val for run in scored}
    pool = {run.summary.n_train for run in scored if run.summary.config.slice == "100%"}
    assert len(n_holdout) == len(n_val) == len(pool) == 1, "one split for every run"
    listed = ", ".join(f"{name} {n}" for name, n in counts.items())
    assert (
        f"{sum(counts.values()):,} labelled images in {len(counts)} classes ({listed}). Every run is "
        f"scored on the same fixed holdout of {n_holdout.pop():,} images; {n_val.pop():,} more validate, "
        f"{pool.pop():,} form the training pool."
    ) in report.text(0)
    assert f"from {len(scored)} cached runs." in report.text(-1)


def test_the_reports_answer_is_the_budget_engines_images_per_class_and_interval(report, answer):
    needed = answer.needed.estimate
    assert needed.low <= needed.estimate <= needed.high
    assert (
        f"To reach a holdout accuracy of {answer.target:.0%}: about {needed.estimate:,.0f} "
        f"({answer.level:.0%} interval {needed.low:,.0f} to {needed.high:,.0f}) images per class."
    ) in report.text(0)
    for caveat in budget.caveats(answer):  # the plateau verdict and the warnings, with their numbers
        assert " ".join(caveat.split()) in report.text(0)


def test_the_reports_backtest_rows_are_the_measured_slice_means_against_the_engines_predictions(
    report, answer, scored
):
    """Measured: each held-out slice's mean holdout accuracy over its runs, from their stored
    predictions; predicted and its interval: the engine's backtest; inside: measured within it."""
    runs_at, shown = by_count(scored), report.table("images per class")
    assert len(shown) == len(answer.backtest.rows) > 0
    for row in answer.backtest.rows:
        measured = float(np.mean([run.right.mean() for run in runs_at[row.n]]))
        assert shown[f"{row.n:,.0f}"] == [
            f"{measured:.1%}",
            f"{row.predicted:.1%}",
            f"{row.low:.1%} to {row.high:.1%}",
            "yes" if row.low <= measured <= row.high else "no",
        ], row.n


def test_the_reports_backtest_sentence_counts_the_slices_inside_and_their_mean_error(report, answer, scored):
    """The rows are every measured count above where the fit stopped; the mean error and the
    count inside are recomputed here from the measured means, not read off the engine."""
    runs_at, backtest = by_count(scored), answer.backtest
    held = sorted(n for n in runs_at if n > backtest.fit_up_to)
    assert backtest.ratio_images is not None, "the curves reach the largest slice's accuracy"
    assert [row.n for row in backtest.rows] == held
    measured = [float(np.mean([run.right.mean() for run in runs_at[n]])) for n in held]
    error = np.mean([abs(m - row.predicted) for m, row in zip(measured, backtest.rows, strict=True)])
    inside = sum(row.low <= m <= row.high for m, row in zip(measured, backtest.rows, strict=True))
    assert (
        f"Backtest (fitted up to {backtest.fit_up_to:g} images per class, predicting the {len(held)} "
        f"larger slices measured): off by {100 * error:.1f} accuracy points on average, {inside} of "
        f"{len(held)} inside the stated {answer.level:.0%} interval; "
        f"{budget.ratio_words(backtest)}."
    ) in report.text(1)


def test_the_reports_threshold_table_is_each_slices_holdout_shares_with_their_wilson_intervals(
    report, scored
):
    """Per slice, over its runs' holdout images: top class right, true class over 50% and 80%,
    at least 80% sure, right when that sure, and how many images that is over every run."""
    shown = report.table("training data")
    runs_of: dict[str, list[Scored]] = defaultdict(list)
    for run in scored:
        runs_of[slice_words(run.summary.config.slice, budget.images_per_class(run.summary))].append(run)
    assert sorted(shown) == sorted(runs_of)
    for label, found in runs_of.items():
        n = [len(run.predictions.labels) for run in found]
        sure = [run.predictions.probs.max(1) >= SURE for run in found]
        sure_right = [int(np.sum(s & run.right)) for s, run in zip(sure, found, strict=True)]
        assert shown[label] == [
            str(len(found)),
            cell(pooled([int(run.right.sum()) for run in found], n)),
            *(cell(pooled([int(np.sum(run.true_p > cut)) for run in found], n)) for cut in CUTS),
            cell(pooled([int(s.sum()) for s in sure], n)),
            cell(pooled(sure_right, [int(s.sum()) for s in sure])),
            f"{sum(int(s.sum()) for s in sure):,} of {sum(n):,}"
            + (f" over {len(found)} runs" if len(found) > 1 else ""),
        ], label


def test_the_reports_mistakes_are_the_largest_slices_most_confidently_wrong_with_their_probability(
    report, scored
):
    """The largest slice's run with the first seeds; its wrong holdout images, least probability
    on the true class first, each with its image's true class and the predicted one's probability."""
    largest = max(run.summary.n_train for run in scored)
    run = min(
        (run for run in scored if run.summary.n_train == largest),
        key=lambda run: (run.summary.config.sample_seed, run.summary.config.seed),
    )
    p = run.predictions
    wrong = sorted(np.flatnonzero(~run.right), key=lambda i: run.true_p[i])[:EXAMPLES]
    assert wrong, "the largest slice's run makes mistakes on this holdout"
    expected = []
    for i in wrong:
        true, predicted = p.classes[p.labels[i]], p.classes[p.probs[i].argmax()]
        expected += [
            f"{p.paths[i]}: {true}",
            f"where it looked for '{predicted}' (predicted, {p.probs[i].max():.0%} sure)",
            f"where it would look for '{true}' (true)",
        ]
    assert report.captions == expected
    assert f"Grad-CAM of the {run.summary.config.slice} run" in report.text(-1)
