"""The answer in sentences: what the intervals are, the report on a terminal, the caveats beside
the answer, gains and the backtest as a person reads them."""

from __future__ import annotations

import math

from core.answers import curves
from core.answers.budget.contradictions import ceiling_below
from core.answers.budget.level import LEVEL, RELIABLE_MULTIPLE
from core.answers.budget.report import BudgetReport
from core.base.intervals import Estimate, share
from core.base.words import counted, per_class

INTERVALS_EXPLAINED = (
    "The dashed line is the power law fitted to the measured slices (the median of the families "
    "where it cannot be fitted). Intervals are {level:.0%} intervals: a bootstrap over the runs of "
    "each slice, pooled over seven curve families (power law, piecewise power law, arctan, "
    "logarithmic, algebraic root, MMF and an exponential approach to a ceiling), each weighted by how "
    "well it predicted this data's own larger slices from its smaller ones, and widened past the "
    "largest slice by what those inner backtests missed."
)
NO_BAND = (
    "No curve could be fitted to these slices, so no {level:.0%} interval is drawn; the shaded band "
    "around the measured points is the spread between their repeats (±1 sd)."
)


def intervals_explained(band: tuple, level: float) -> str:
    """What the chart's intervals are: the fitted curves' (:data:`INTERVALS_EXPLAINED`), or,
    where no curve was fitted, a plain word that there are none beyond the repeats' spread."""
    return (INTERVALS_EXPLAINED if band else NO_BAND).format(level=level)


def stated(e, level: float, form: str = ".1%") -> str:
    """An estimate as the pages and the terminal state it: ``91.2% (80% interval 90.0% to 93.0%)``
    for an accuracy, ``form=",.0f"`` for a count of images."""
    return f"{e.estimate:{form}} ({level:.0%} interval {e.low:{form}} to {e.high:{form}})"


def describe(report: BudgetReport) -> str:
    """The report as a person reads it on a terminal."""
    level, needed = report.level, report.needed
    lines = [
        f"{report.experiment} on {report.dataset} (holdout of {report.n_holdout} images)",
        "  images/class  accuracy  runs",
    ]
    lines += [f"  {per_class(p.images_per_class):>12}  {p.accuracy:8.1%}  {p.runs:4d}" for p in report.points]
    if report.contradicted:
        lines.append(report.contradicted)
    elif needed.estimate:
        lines.append(
            f"To reach {share(report.target)}: about {stated(needed.estimate, level, ',.0f')} images per "
            "class."
        )
    else:
        lines.append(f"To reach {share(report.target)}: no estimate. {needed.reason}")
    if needed.ceiling:
        lines.append(f"Ceiling of the fitted curves: {stated(needed.ceiling, level)}.")
    lines += caveats(report)
    if report.accuracy_at:
        n, answer = report.accuracy_at
        said = f"{stated(answer.estimate, level)}." if answer.estimate else f"no estimate. {answer.reason}"
        lines.append(f"At {n:,.0f} images per class: {said}")
    lines.append(backtest_sentence(report.backtest, level))
    if report.allocation:
        a = report.allocation
        shares = ", ".join(f"{name} +{n}" for name, n in sorted(a.extra.items(), key=lambda kv: -kv[1]) if n)
        lines.append(f"{report.budget} more labels, where the curves say they pay most: {shares}.")
        lines.append(gain_sentence(a, level))
        lines += a.notes
    return "\n".join(lines)


def caveats(report: BudgetReport) -> list[str]:
    """What a reader must see beside the answer, in words: the plateau verdict, and warnings
    when the answer reaches past where the curves were checked, when the fitted ceiling lies
    below a measurement, and when classes of unequal size make the largest slice's count an
    average (a contradicted answer is said in its place, :attr:`BudgetReport.contradicted`, not
    here)."""
    found = [report.plateau.verdict] if report.plateau else []
    warnings = (
        reach_warning(report),
        ceiling_below(report.points, report.needed.ceiling, report.level),
        report.uneven,
    )
    return [*found, *(warning for warning in warnings if warning)]


def reach_warning(report: BudgetReport) -> str | None:
    """A warning when the answer reaches past where the curves were checked, else None."""
    needed, reliable = report.needed.estimate, report.reliable_up_to
    if needed is None or reliable is None or needed.high <= reliable:
        return None
    return (
        f"Unreliable beyond {reliable:,.0f} images per class ({RELIABLE_MULTIPLE:g}x the largest slice "
        "measured): past that, extrapolated curves missed on the datasets this was checked on. "
        "Measure a larger slice before budgeting on this number."
    )


def points_stated(e: Estimate | None) -> str:
    """A gain in accuracy points with its interval: ``+1.2 points (+0.4 to +2.0)``; where there is
    no estimate or no interval (one run), says so rather than print a zero-width one."""
    if e is None:
        return "no estimate"
    if not (math.isfinite(e.low) and math.isfinite(e.high)):
        return f"{100 * e.estimate:+.1f} points (one run: no interval yet)"
    return f"{100 * e.estimate:+.1f} points ({100 * e.low:+.1f} to {100 * e.high:+.1f})"


NO_GAIN = (
    "No estimate: the curves predict a gain only where labels go to a class whose recall was seen to "
    "rise, with runs enough to give an interval."
)


def gain_sentence(allocation: curves.Allocation, level: float = LEVEL) -> str:
    """The predicted gains of an allocation as the page and the terminal state them, in points, and
    why one is missing where one is: a bare "no estimate" would leave the reader guessing."""
    said = (
        f"Predicted gain in holdout accuracy: {points_stated(allocation.expected_gain)} as suggested, "
        f"{points_stated(allocation.even_gain)} spread evenly ({level:.0%} intervals)."
    )
    if allocation.expected_gain is None or allocation.even_gain is None:
        return f"{said} {NO_GAIN}"
    best = max(allocation.expected_gain.high, allocation.even_gain.high)
    if best < NOT_WORTH:
        return (
            f"{said} Either way that is less than {100 * NOT_WORTH:.1f} points even at the top of its "
            "interval: on this curve these labels would not buy a gain anyone could measure."
        )
    return said


NOT_WORTH = 0.005  # a predicted gain whose top end is under half a point is called not worth it


def ratio_words(backtest: curves.Backtest) -> str:
    """The backtest's images ratio as a person reads it: what the curves would have asked for to
    reach the accuracy the largest slice measured, against what that slice had. A direction
    ("the curves ran optimistic") only where every held-out slice missed the same way: on a
    flat tail a fraction of a point below the largest slice reads as many times the images,
    while the slices before it may have been over-predicted."""
    ratio = backtest.ratio_images
    if ratio is None:
        return ""
    said = "they put the largest slice's accuracy at "
    if 0.9 <= ratio <= 1.1:
        return f"{said}about the images it had"
    said += f"{ratio:.0%} of the images it had" if ratio < 1 else f"{ratio:.1f} times the images it had"
    above = sum(row.predicted > row.measured for row in backtest.rows)
    below = sum(row.predicted < row.measured for row in backtest.rows)
    if above and below:
        return (
            f"{said}, but {above} of the {len(backtest.rows)} slices {'was' if above == 1 else 'were'} "
            f"predicted above what {'it' if above == 1 else 'they'} measured and {below} below: on this "
            "data the curves erred both ways"
        )
    return f"{said}: on this data the curves ran {'optimistic' if ratio < 1 else 'pessimistic'}"


def backtest_sentence(backtest: curves.Backtest, level: float = LEVEL) -> str:
    """How far the curves were trusted on this data, in one sentence."""
    if backtest.reason:
        return f"Backtest: {backtest.reason}"
    ratio = f"; {words}" if (words := ratio_words(backtest)) else ""
    calibrated = (
        " Intervals are widened by what the curves missed on this data's own smaller slices."
        if backtest.calibrated
        else " Too few slices to calibrate the intervals by this data's own misses: they show only the noise."
    )
    held = counted(len(backtest.rows), "larger slice")
    return (
        f"Backtest (fitted up to {per_class(backtest.fit_up_to)} images per class, predicting the "
        f"{held} measured): off by {100 * backtest.mean_abs_error:.1f} accuracy "
        f"points on average, {backtest.inside} of {len(backtest.rows)} inside the stated {level:.0%} "
        f"interval{ratio}.{calibrated}"
    )
