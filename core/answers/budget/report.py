"""The answer for one experiment on one dataset: fit and backtest the curve once (:func:`analyse`),
then answer a target from it (:func:`report`); ``BudgetReport.to_dict()`` is what
``python -m core budget --json`` prints."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from core.answers import curves
from core.answers.budget.classes import allocate, uneven_classes
from core.answers.budget.contradictions import measured_above, measured_below
from core.answers.budget.level import LEVEL, RELIABLE_MULTIPLE
from core.answers.budget.plateau import PLATEAU_VAR_FLOOR, Plateau, find_plateau, finetune_crossover
from core.answers.budget.points import CurvePoint, curve_points, default_fit_up_to
from core.answers.budget.selection import Selection, observations
from core.answers.kept_fits import kept
from core.base.errors import UserError, check_count, check_share
from core.base.intervals import Estimate


@dataclass(frozen=True)
class FamilyScore:
    """A curve family's share of the answer's interval, its mean miss on the inner backtests
    (accuracy; None when there were too few slices for one), and whether its fit is the answer's
    point (:func:`core.answers.curves.calibration.central`)."""

    name: str
    weight: float
    backtest_error: float | None
    point: bool = False


@dataclass(frozen=True)
class FamilyLine:
    """A curve family's share of the answer in the words the page prints."""

    family: str
    weight: str
    miss: str


def family_lines(families: Iterable[FamilyScore]) -> tuple[FamilyLine, ...]:
    """The families, heaviest first as given: weight to two decimals, inner miss in points."""
    return tuple(
        FamilyLine(
            f.name.replace("_", " ") + (" (the point)" if f.point else ""),
            f"{f.weight:.2f}",
            "no inner backtest" if f.backtest_error is None else f"{100 * f.backtest_error:.1f} points",
        )
        for f in families
    )


@dataclass(frozen=True)
class BudgetReport:
    """Everything ``python -m core budget`` answers, for one experiment on one dataset."""

    dataset: str
    experiment: str
    level: float
    n_holdout: int
    target: float
    needed: curves.Answer
    points: tuple[CurvePoint, ...]
    backtest: curves.Backtest
    band: tuple[tuple[float, Estimate], ...]
    accuracy_at: tuple[float, curves.Answer] | None = None
    allocation: curves.Allocation | None = None
    budget: int | None = None
    reliable_up_to: float | None = None
    plateau: Plateau | None = None
    families: tuple[FamilyScore, ...] = ()
    uneven: str | None = None

    @property
    def contradicted(self) -> str | None:
        """Why the answer must not be read as it stands: the curve puts the target below the
        largest slice, whose models measure under it (:func:`measured_below`), or further than a
        slice that already reaches it (:func:`measured_above`). The pages, the story, the report
        and ``budget --json`` (its ``contradicted``) then lead with this in place of the answer."""
        found = (self.points, self.needed, self.target, self.n_holdout)
        return measured_below(*found) or measured_above(*found)

    @property
    def standing(self) -> Estimate | None:
        """The images per class the answer states, None where there is no estimate or a
        measurement contradicts it: what the charts draw in green and the pages call the answer."""
        return None if self.contradicted else self.needed.estimate

    def to_dict(self) -> dict:
        needed = self.needed
        report = {
            "dataset": self.dataset,
            "experiment": self.experiment,
            "level": self.level,
            "n_holdout": self.n_holdout,
            "target": self.target,
            "images_per_class": needed.estimate.to_dict() if needed.estimate else None,
            "beyond_reach": needed.beyond_reach,
            "reason": needed.reason,
            "contradicted": self.contradicted,
            "ceiling": needed.ceiling.to_dict() if needed.ceiling else None,
            "per_family": needed.to_dict()["per_family"],
            "points": [p.to_dict() for p in self.points],
            "backtest": _backtest_dict(self.backtest),
            "curve": [{"images_per_class": n, **e.to_dict()} for n, e in self.band],
            "reliable_up_to": self.reliable_up_to,
            "plateau": self.plateau.to_dict() if self.plateau else None,
            "families": {
                f.name: {"weight": f.weight, "backtest_error": f.backtest_error} for f in self.families
            },
            # the family whose fit is the point (null: the weighted median over families)
            "point_family": next((f.name for f in self.families if f.point), None),
        }
        if self.accuracy_at is not None:
            n, answer = self.accuracy_at
            report["accuracy_at"] = {
                "images_per_class": n,
                **(
                    answer.estimate.to_dict()
                    if answer.estimate
                    else {"estimate": None, "low": None, "high": None}
                ),
                "reason": answer.reason,
            }
        if self.allocation is not None:
            shares = self.allocation.to_dict()
            report |= {
                "budget": self.budget,
                "allocation": shares["extra"],
                "expected_gain": shares["expected_gain"],
                "even_gain": shares["even_gain"],
                "even_allocation": shares["even_extra"],
                "notes": shares["notes"],
            }
        return report


def _backtest_dict(backtest: curves.Backtest) -> dict:
    return {**backtest.to_dict(), "rows": backtest_rows(backtest)}


def backtest_rows(backtest: curves.Backtest) -> list[dict]:
    """The held-out slices as rows: images per class, measured, predicted, low, high, inside."""
    return [
        {
            "images_per_class": row.n,
            "measured": row.measured,
            "predicted": row.predicted,
            "low": row.low,
            "high": row.high,
            "inside": row.inside,
        }
        for row in backtest.rows
    ]


@dataclass(frozen=True)
class BacktestLine:
    """A held-out slice of the backtest in the words the page and the report print."""

    images_per_class: str
    measured: str
    predicted: str
    interval: str
    inside: str


def backtest_lines(backtest: curves.Backtest) -> tuple[BacktestLine, ...]:
    """The backtest's rows for people: accuracies in percent, the interval in one cell."""
    return tuple(
        BacktestLine(
            f"{row.n:,.0f}",
            f"{row.measured:.1%}",
            f"{row.predicted:.1%}",
            f"{row.low:.1%} to {row.high:.1%}",
            "yes" if row.inside else "no",
        )
        for row in backtest.rows
    )


@dataclass(frozen=True)
class Analysis:
    """The target-independent part of an answer: the measured curve, the fitted curves (or why
    none), the backtest, and the fitted band to draw. Costs a few seconds; answers are then cheap."""

    selection: Selection
    points: tuple[CurvePoint, ...]
    fitted: curves.Ensemble | str
    backtest: curves.Backtest
    band: tuple[tuple[float, Estimate], ...]
    level: float
    plateau: Plateau | None = None
    uneven: str | None = None  # the classes' counts differ at the largest slice (uneven_classes)

    @property
    def reliable_up_to(self) -> float:
        """Images per class up to which an answer is within the measured reach of the curves."""
        return RELIABLE_MULTIPLE * self.points[-1].images_per_class

    @property
    def families(self) -> tuple[FamilyScore, ...]:
        if isinstance(self.fitted, str):
            return ()
        calibration, anchor = self.fitted.calibration, self.fitted.anchor
        return tuple(
            FamilyScore(name, calibration.weights[name], calibration.errors.get(name), name == anchor)
            for name in sorted(calibration.weights, key=lambda n: -calibration.weights[n])
        )

    @property
    def ceiling(self) -> Estimate | None:
        return curves.answer_at(self.fitted, self.points[-1].images_per_class, self.level).ceiling

    def suggested_target(self) -> float:
        """A target worth asking about, to 0.01, that every page and the report open on.

        Halfway from the best measured accuracy to the fitted ceiling (two points above the best
        without a ceiling); where the curves cannot answer that, the highest whole percent above
        the best that they can (the goal itself where none can). Where the ceiling lies below the
        best measured slice (the curves have levelled off), the next whole point above the best:
        the question a team on a plateau asks ("can more labels beat what we have?"), which the
        answer then says the curves do not reach. Never a target already measured: a default
        below the best slice teaches a reader nothing.
        """
        best = max(p.accuracy for p in self.points)
        above = math.floor(100 * best + 1)  # the next whole percent above the best measured
        ceiling = self.ceiling
        if ceiling is not None and ceiling.estimate <= best:
            return _as_target(above / 100)
        goal = best + 0.02 if ceiling is None else max((best + ceiling.estimate) / 2, above / 100)
        goal = _as_target(goal)
        for percent in range(round(100 * goal), above - 1, -1):
            if curves.answer_needed(self.fitted, percent / 100, self.level).estimate is not None:
                return percent / 100
        return goal


def _as_target(value: float) -> float:
    """A target between 1% and 99%, to the whole percent."""
    return float(min(0.99, max(0.01, round(value, 2))))


def analyse(
    selection: Selection,
    fit_up_to: float | None = None,
    level: float = LEVEL,
    n_boot: int = 100,
    seed: int = 0,
) -> Analysis:
    """Fit the selection's learning curve and backtest it.

    Raises:
        UserError: fewer than 3 slices measured.
    """
    points = curve_points(selection)
    if len(points) < 3:
        raise UserError(
            f"too few slices to fit a learning curve: {len(points)} measured "
            f"({', '.join(p.slice for p in points)}), at least 3 are needed; run "
            f"python -m core sweep --preset curve --data {selection.dataset.root}"
        )
    runs_seen, n_holdout = tuple(observations(selection)), selection.n_holdout
    up_to = default_fit_up_to(points) if fit_up_to is None else check_count("--fit-up-to", fit_up_to)
    fitted = kept(
        selection.cache_dir,
        ("fit", runs_seen, n_boot, seed, n_holdout),
        lambda: curves.fit(runs_seen, n_boot, seed, n_holdout),
    )
    backtest = kept(
        selection.cache_dir,
        ("backtest", runs_seen, up_to, level, n_boot, seed, n_holdout),
        lambda: curves.backtest(runs_seen, up_to, level, n_boot, seed, n_holdout),
    )
    band: tuple[tuple[float, Estimate], ...] = ()
    if not isinstance(fitted, str):
        ns = np.geomspace(points[0].images_per_class, points[-1].images_per_class * 100, 60)
        band = tuple(zip((float(n) for n in ns), curves.band(fitted, ns, level), strict=True))
    # the runs' own spread, unfloored: the floor keeps one run from dominating a fit, but whether
    # a slice beat another is a question for the measured spread
    measured = curves.curve_points(runs_seen, floor=PLATEAU_VAR_FLOOR)
    plateau = find_plateau(measured, finetune_crossover(selection), n_holdout)
    uneven = uneven_classes(selection, points[-1])
    return Analysis(selection, tuple(points), fitted, backtest, band, level, plateau, uneven)


def report(
    analysis: Analysis,
    target: float,
    accuracy_at: float | None = None,
    budget: int | None = None,
) -> BudgetReport:
    """The budget answer for ``target`` beside the backtest, and on request the accuracy at
    ``accuracy_at`` images per class and the allocation of ``budget`` more labels (beyond the
    largest slice measured).

    Raises:
        UserError: a target outside (0, 1), or a bad count or budget.
    """
    check_share("--target", target)
    selection, level = analysis.selection, analysis.level
    at = None
    if accuracy_at is not None:
        check_count("--accuracy-at", accuracy_at)
        at = (accuracy_at, curves.answer_at(analysis.fitted, accuracy_at, level))
    allocation = None
    if budget is not None:
        if budget < 1:
            raise UserError(f"--budget must be at least 1 label, not {budget}")
        allocation = allocate(selection, budget, level=level)
    return BudgetReport(
        str(selection.dataset.root),
        selection.experiment,
        level,
        selection.n_holdout,
        target,
        curves.answer_needed(analysis.fitted, target, level),
        analysis.points,
        analysis.backtest,
        analysis.band,
        at,
        allocation,
        budget,
        analysis.reliable_up_to,
        analysis.plateau,
        analysis.families,
        analysis.uneven,
    )
