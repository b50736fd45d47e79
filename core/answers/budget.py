"""The answer: how many labelled images per class reach a target holdout accuracy, how far to trust
it, and which classes to label next.

It reads cached runs only. The runs of one experiment on one dataset (same images, same holdout)
become a learning curve: holdout accuracy against images per class (``n_train / classes``), one
point per uniform slice (``N/class`` or ``P%``). :mod:`core.answers.curves` fits seven curve families to it
with bootstrap intervals; this module picks the runs, shapes the points, runs the backtest (fit
on the smaller slices, predict the larger measured ones) and the per-class allocation, and
returns one report whose ``to_dict()`` is what ``python -m core budget --json`` prints.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.answers import curves
from core.answers.curves.allocation import recall_interval
from core.answers.curves.fitting import plateaued, rise_between, shape_reason
from core.answers.kept_fits import kept
from core.base.errors import UserError, check_share
from core.base.intervals import Estimate, share, t_interval, wilson
from core.data.datasets import Dataset, scan
from core.data.splits import HOLDOUT_SHARE, VAL_SHARE, SliceSpec, curve_slices, make_splits
from core.store import runs
from core.store.config import CURVE_SAMPLE_SEEDS, CURVE_SEEDS, RunConfig, Split, departures, grid
from core.store.measured import measured_once, measured_per_experiment, pool_sizes
from core.store.record import Summary
from core.store.tables import crossover, experiment_label, match_experiment, plain_experiment, runs_frame

LEVEL = 0.8  # the interval the answer states; the backtest checks how often it holds
RELIABLE_MULTIPLE = curves.RELIABLE_MULTIPLE
INTERVALS_EXPLAINED = (
    "Intervals are {level:.0%} intervals: a bootstrap over the runs of each slice, pooled over seven "
    "curve families (power law, piecewise power law, arctan, logarithmic, algebraic root, MMF and an "
    "exponential approach to a ceiling), each weighted by how well it predicted this data's own larger "
    "slices from its smaller ones, and widened past the largest slice by what those inner backtests "
    "missed."
)
NO_BAND = (
    "No curve could be fitted to these slices, so no {level:.0%} interval is drawn; the shaded band "
    "around the measured points is the spread between their repeats (±1 sd)."
)


def intervals_explained(band: tuple, level: float) -> str:
    """What the chart's intervals are: the fitted curves' (:data:`INTERVALS_EXPLAINED`), or,
    where no curve was fitted, a plain word that there are none beyond the repeats' spread."""
    return (INTERVALS_EXPLAINED if band else NO_BAND).format(level=level)


@dataclass(frozen=True)
class Selection:
    """The cached runs of one experiment on one dataset and split."""

    dataset: Dataset
    experiment: str
    experiments: tuple[str, ...]  # every experiment with runs on this dataset and split
    summaries: tuple[Summary, ...]
    cache_dir: Path
    configs: Mapping[str, RunConfig] = dataclasses.field(default_factory=dict)  # one per experiment

    def plain(self, experiment: str) -> str:
        """An experiment's label in words a stakeholder reads (:func:`plain_experiment`)."""
        config = self.configs.get(experiment)
        return plain_experiment(config) if config else experiment

    @property
    def classes(self) -> tuple[str, ...]:
        return self.dataset.classes

    @property
    def n_holdout(self) -> int:
        return self.summaries[0].n_holdout


def select(
    cache_dir: Path,
    data: str | Path,
    experiment: str | None = None,
    holdout: float = HOLDOUT_SHARE,
    val: float = VAL_SHARE,
    split_seed: int = 0,
) -> Selection:
    """The runs of ``experiment`` (its label, or a part of it that names one) on ``data`` as it is
    now; by default the experiment with the most slices, then the most runs, then the one closest
    to the usual training (:func:`core.store.config.departures`).

    Raises:
        UserError: no cached run on this dataset and split, or ``experiment`` names none or several.
    """
    dataset = scan(data, cache_dir)
    split = Split(holdout, val, split_seed)
    mine = [s for s in runs.list_runs(cache_dir) if _on(s, dataset, split)]
    if not mine:
        raise UserError(
            f"no cached runs for {dataset.root} (holdout {holdout:g}, val {val:g}, split seed "
            f"{split_seed}); train a learning curve first: python -m core sweep --preset curve "
            f"--data {dataset.root}"
        )
    by_experiment: dict[str, list[Summary]] = defaultdict(list)
    for summary in mine:
        by_experiment[experiment_label(summary.config)].append(summary)
    labels = tuple(
        sorted(
            by_experiment,
            key=lambda e: (
                -len(_uniform_slices(by_experiment[e])),
                -len(by_experiment[e]),
                departures(by_experiment[e][0].config),
                e,
            ),
        )
    )
    chosen = labels[0] if experiment is None else match_experiment(experiment, labels)
    configs = {label: found[0].config for label, found in by_experiment.items()}
    measured = measured_once(by_experiment[chosen], pool_sizes(dataset, split))
    return Selection(dataset, chosen, labels, measured, cache_dir, configs)


def _on(summary: Summary, dataset: Dataset, split: Split) -> bool:
    return summary.info.fingerprint == dataset.fingerprint and summary.config.split == split


def splits_with_runs(cache_dir: Path, data: str | Path) -> list[tuple[Split, int]]:
    """Each split that ``data``'s cached runs were scored on, with how many runs, most first: a
    dataset measured on a small holdout and again on a larger one has two learning curves.

    Raises:
        UserError: the dataset is missing or unreadable.
    """
    dataset = scan(data, cache_dir)
    counts = Counter(
        s.config.split for s in runs.list_runs(cache_dir) if s.info.fingerprint == dataset.fingerprint
    )
    return counts.most_common()


def siblings(cache_dir: Path, summary: Summary) -> list[Summary]:
    """The runs of ``summary``'s experiment: same images, same split, same label (its dataset
    folder need not exist any more)."""
    return [
        s
        for s in runs.list_runs(cache_dir)
        if s.info.fingerprint == summary.info.fingerprint
        and s.config.split == summary.config.split
        and experiment_label(s.config) == experiment_label(summary.config)
    ]


def _uniform_slices(summaries: list[Summary] | tuple[Summary, ...]) -> set[str]:
    """Slices that give every class the same count or share (per-class counts are left out)."""
    return {s.config.slice for s in summaries if not SliceSpec.parse(s.config.slice).counts}


def curve_grid(base: RunConfig, cache_dir: Path) -> list[RunConfig]:
    """The learning-curve sweep of ``base``'s experiment on its dataset: the curve slices its
    smallest class allows, over the curve's sample seeds.

    Raises:
        UserError: the dataset is missing or cannot be split.
    """
    dataset = scan(base.data, cache_dir)
    splits = make_splits(dataset.labels, dataset.classes, *base.split)
    return grid(base, curve_slices([len(pool) for pool in splits.pools]), CURVE_SEEDS, CURVE_SAMPLE_SEEDS)


def images_per_class(summary: Summary) -> float:
    return summary.n_train / len(summary.classes)


def observations(selection: Selection, up_to: float = math.inf) -> list[curves.Observation]:
    """One observation per run of a uniform slice, up to ``up_to`` images per class."""
    uniform = _uniform_slices(selection.summaries)
    return [
        curves.Observation(images_per_class(s), s.accuracy, s.config.sample_seed, s.config.seed)
        for s in selection.summaries
        if s.config.slice in uniform and images_per_class(s) <= up_to
    ]


@dataclass(frozen=True)
class CurvePoint:
    """A measured slice: mean accuracy over its runs and the two sources of spread, told apart.

    ``sample_spread``: standard deviation over sample seeds (which images were labelled) of the
    mean over training seeds; ``seed_spread``: mean over sample seeds of the standard deviation
    over training seeds (initialisation and order). ``None`` where only one value was measured;
    ``together`` when every run varied both seeds at once (the original grid does).
    """

    slice: str
    images_per_class: float
    accuracy: float
    runs: int
    sample_spread: float | None
    seed_spread: float | None
    together: bool

    def to_dict(self) -> dict:
        return {
            "slice": self.slice,
            "images_per_class": self.images_per_class,
            "accuracy": self.accuracy,
            "runs": self.runs,
            "sample_seed_spread": self.sample_spread,
            "training_seed_spread": self.seed_spread,
            "seeds_varied_together": self.together,
        }


@dataclass(frozen=True)
class PointLine:
    """A measured slice in the words the page prints: accuracy in percent, spreads in points."""

    slice: str
    images_per_class: str
    accuracy: str
    runs: str
    sample_spread: str
    seed_spread: str


def _spread(value: float | None) -> str:
    return "one value" if value is None else f"±{100 * value:.1f} points"


def point_lines(points: Iterable[CurvePoint]) -> tuple[PointLine, ...]:
    """The measured slices for people (standard deviations over seeds, as the chart's band)."""
    return tuple(
        PointLine(
            p.slice,
            f"{p.images_per_class:,.1f}".removesuffix(".0"),
            f"{p.accuracy:.1%}",
            str(p.runs),
            _spread(p.sample_spread),
            "together with the sample seeds" if p.together else _spread(p.seed_spread),
        )
        for p in points
    )


def curve_points(selection: Selection) -> list[CurvePoint]:
    """The measured learning curve, smallest slice first."""
    uniform = _uniform_slices(selection.summaries)
    by_slice: dict[str, list[Summary]] = defaultdict(list)
    for summary in selection.summaries:
        if summary.config.slice in uniform:
            by_slice[summary.config.slice].append(summary)
    points = [_point(text, group) for text, group in by_slice.items()]
    return sorted(points, key=lambda p: p.images_per_class)


def _point(text: str, group: list[Summary]) -> CurvePoint:
    by_sample: dict[int, list[float]] = defaultdict(list)
    for summary in group:
        by_sample[summary.config.sample_seed].append(summary.accuracy)
    sample_means = [np.mean(values) for values in by_sample.values()]
    within = [np.std(values, ddof=1) for values in by_sample.values() if len(values) > 1]
    return CurvePoint(
        slice=text,
        images_per_class=float(np.mean([images_per_class(s) for s in group])),
        accuracy=float(np.mean([s.accuracy for s in group])),
        runs=len(group),
        sample_spread=float(np.std(sample_means, ddof=1)) if len(sample_means) > 1 else None,
        seed_spread=float(np.mean(within)) if within else None,
        together=all(s.config.seed == s.config.sample_seed for s in group) and len(group) > 1,
    )


def default_fit_up_to(points: list[CurvePoint]) -> float:
    """Where the backtest stops fitting: the largest measured count at most a quarter of the
    largest, so the curves must extrapolate four-fold or more, with four counts to fit at least
    (the smallest four, on a short curve)."""
    ns = sorted({p.images_per_class for p in points})
    eligible = [n for n in ns if n <= ns[-1] / 4]
    return eligible[-1] if len(eligible) >= 4 else ns[min(3, len(ns) - 2)]


@dataclass(frozen=True)
class Plateau:
    """Where the measured curve stopped paying: the smallest slice from which no later slice
    rises beyond the noise, the mean accuracy there, and the verdict in words."""

    since: float
    accuracy: float
    verdict: str

    def to_dict(self) -> dict:
        return {"since": self.since, "accuracy": self.accuracy, "verdict": self.verdict}


@dataclass(frozen=True)
class FamilyScore:
    """A curve family's share of the answer and its mean miss on the inner backtests (accuracy;
    None when there were too few slices for one)."""

    name: str
    weight: float
    backtest_error: float | None


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
            f.name.replace("_", " "),
            f"{f.weight:.2f}",
            "no inner backtest" if f.backtest_error is None else f"{100 * f.backtest_error:.1f} points",
        )
        for f in families
    )


PLATEAU_SPAN = 4.0  # a flat stretch must span at least this ratio of images per class to count
PLATEAU_VAR_FLOOR = 1e-6  # a slice's mean is trusted to 0.1 point at best


def find_plateau(measured: list[curves.Point], crossover: str | None = None) -> Plateau | None:
    """The plateau of the measured curve, if its largest slices span :data:`PLATEAU_SPAN` or
    more without rising beyond their noise (``core.answers.curves.fitting.plateaued``) after the curve
    rose to them, from the first slice that the later ones do not beat beyond noise.
    ``measured``: the points with the runs' own spread only (every slice is scored on the same
    holdout, so its binomial noise moves them together and says nothing about whether one slice
    beat another). ``crossover``: the slice from which fine-tuning beat this experiment, if it
    did."""
    if len(measured) < 4 or shape_reason(measured):
        return None
    flat = [i for i in range(len(measured) - 2) if plateaued(measured[i:]) and not _risen_since(measured[i:])]
    if not flat or measured[-1].n / measured[flat[0]].n < PLATEAU_SPAN:
        return None
    start = measured[flat[0]]
    mean = float(np.mean([p.mean for p in measured[flat[0] :]]))
    options = (
        f"fine-tuning beat this head from {crossover} on this data"
        if crossover
        else "consider fine-tuning, a larger backbone or a larger image size"
    )
    verdict = (
        f"Accuracy has not moved beyond noise since about {start.n:,.0f} images per class "
        f"(right {mean:.1%} of the time on average since): more labels of the same kind are unlikely "
        f"to help; {options}."
    )
    return Plateau(start.n, mean, verdict)


def _risen_since(points: list[curves.Point]) -> bool:
    """Whether the points after the first stand above it, on average, beyond two standard errors.

    The halves that :func:`plateaued` compares average a rise away when a noisy slice sits in the
    upper half: with AdamW heads on 60,000 Fashion-MNIST images, one 2,000-per-class run at 0.805
    made the curve "flat since 130 per class" although every slice from 300 on stood 2 points
    above 130's 0.829."""
    rise, noise = rise_between(points[:1], points[1:])
    return rise > noise


def finetune_crossover(selection: Selection) -> str | None:
    """The smallest slice from which a fine-tuned experiment on the same data beat the selected
    one at every larger slice both measured (as the Holdout page shows it); None if none did."""

    if "finetune" in selection.experiment:
        return None
    everything = measured_per_experiment(
        [
            s
            for s in runs.list_runs(selection.cache_dir)
            if s.info.fingerprint == selection.dataset.fingerprint
        ],
        selection.cache_dir,
    )
    tuned = [e for e in selection.experiments if "finetune" in e]
    if not tuned:
        return None
    frame = runs_frame(everything)
    return crossover(frame, selection.experiment, tuned[0])


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

    @property
    def contradicted(self) -> str | None:
        """Why the answer must not be read as it stands: the curve puts the target below the
        largest slice, whose models measure under it (:func:`measured_below`). The pages, the
        story and the report then lead with this in place of the answer."""
        return measured_below(self.points, self.needed, self.target, self.n_holdout)

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

    @property
    def reliable_up_to(self) -> float:
        """Images per class up to which an answer is within the measured reach of the curves."""
        return RELIABLE_MULTIPLE * self.points[-1].images_per_class

    @property
    def families(self) -> tuple[FamilyScore, ...]:
        if isinstance(self.fitted, str):
            return ()
        calibration = self.fitted.calibration
        return tuple(
            FamilyScore(name, calibration.weights[name], calibration.errors.get(name))
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
    up_to = fit_up_to or default_fit_up_to(points)
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
    plateau = find_plateau(measured, finetune_crossover(selection))
    return Analysis(selection, tuple(points), fitted, backtest, band, level, plateau)


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
        if not accuracy_at > 0:
            raise UserError(
                f"--accuracy-at must be a positive number of images per class, not {accuracy_at:g}"
            )
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
    )


def per_class_counts(selection: Selection, summary: Summary) -> dict[str, int]:
    """Training images of each class in a run's slice (drawn again from its split and seeds)."""
    dataset, config = selection.dataset, summary.config
    splits = make_splits(dataset.labels, dataset.classes, *config.split)
    train = splits.slice_indices(SliceSpec.parse(config.slice), config.sample_seed, dataset.classes)
    counts = np.bincount(dataset.labels[train], minlength=len(dataset.classes))
    return dict(zip(dataset.classes, (int(c) for c in counts), strict=True))


def per_class_observations(
    selection: Selection, up_to: dict[str, int] | None = None
) -> dict[str, list[curves.Observation]]:
    """Each class's holdout recall against its own training images, one observation per run (runs
    with more images of any class than ``up_to`` left out)."""
    found: dict[str, list[curves.Observation]] = defaultdict(list)
    for summary in selection.summaries:
        counts = per_class_counts(selection, summary)
        if up_to is not None and any(counts[c] > up_to[c] for c in counts):
            continue
        for name, recall in summary.holdout.per_class_accuracy.items():
            if recall is not None:
                found[name].append(
                    curves.Observation(counts[name], recall, summary.config.sample_seed, summary.config.seed)
                )
    return found


@dataclass(frozen=True)
class ClassPoint:
    """A class's mean holdout recall at one count of its training images, with its interval."""

    n: float
    recall: Estimate


def class_curves(selection: Selection, level: float = LEVEL) -> dict[str, tuple[ClassPoint, ...]]:
    """Each class's mean holdout recall per training-image count, with the interval its runs and
    its few holdout images allow, for drawing."""
    held = _holdout_counts(selection)
    return {
        name: tuple(
            ClassPoint(p.n, recall_interval(p, level, held[name]))
            for p in curves.curve_points(found, held[name])
        )
        for name, found in per_class_observations(selection).items()
    }


def _holdout_counts(selection: Selection) -> dict[str, int]:
    """Holdout images of each class in the selection's split."""
    dataset = selection.dataset
    holdout = make_splits(dataset.labels, dataset.classes, *selection.summaries[0].config.split).holdout
    counts = np.bincount(dataset.labels[holdout], minlength=len(dataset.classes))
    return dict(zip(dataset.classes, (int(n) for n in counts), strict=True))


def allocate(
    selection: Selection,
    budget: int,
    base: str | None = None,
    room: bool = False,
    level: float = LEVEL,
    n_boot: int = 200,
    seed: int = 0,
) -> curves.Allocation:
    """Share ``budget`` more labels among classes from per-class curves. From the largest slice
    by default; from ``base`` (a slice) to check a suggestion by training it: then only runs up
    to ``base`` are fitted and, with ``room``, no class gets more than its unlabelled pool holds.

    Raises:
        UserError: ``base`` was not measured in this experiment.
    """
    dataset = selection.dataset
    pools = pool_sizes(dataset, selection.summaries[0].config.split)
    held = _holdout_counts(selection)
    current = per_class_counts(selection, _base_summaries(selection, base)[0])
    return curves.allocate(
        per_class_observations(selection, current if base is not None else None),
        {c: n / sum(held.values()) for c, n in held.items()},
        current,
        budget,
        level,
        n_boot,
        seed,
        room={c: pools[c] - current[c] for c in pools} if room else None,
        holdout_counts=held,
    )


@dataclass(frozen=True)
class CheckPlan:
    """A suggestion to check by training it: ``budget`` more labels from the ``base`` slice, as the
    curves share them (``suggested``) and spread evenly (``even``), both as per-class slices."""

    base: str
    budget: int
    current: dict[str, int]
    allocation: curves.Allocation
    suggested: str
    even: str
    sample_seeds: tuple[int, ...]

    def configs(self, selection: Selection) -> list[RunConfig]:
        """The runs still to train to measure both: each distinct slice (one when the suggestion is
        the even split) for every base run, less those already cached, so that a button's count is
        what it queues."""
        measured = {(s.config.slice, s.config.sample_seed, s.config.seed) for s in selection.summaries}
        return [
            dataclasses.replace(s.config, slice=text)
            for text in dict.fromkeys((self.suggested, self.even))
            for s in _base_summaries(selection, self.base)
            if (text, s.config.sample_seed, s.config.seed) not in measured
        ]


def check_plan(selection: Selection, base: str, budget: int) -> CheckPlan:
    """Plan the check of an allocation from a measured ``base`` slice, within the pool.

    Raises:
        UserError: ``base`` was not measured, or the pool has no room left beyond it.
    """
    allocation = allocate(selection, budget, base, room=True)
    base_runs = _base_summaries(selection, base)
    current = per_class_counts(selection, base_runs[0])
    if not sum(allocation.extra.values()):
        raise UserError(f"no unlabelled images are left beyond slice {base} to check a suggestion with")
    return CheckPlan(
        base_runs[0].config.slice,
        budget,
        current,
        allocation,
        custom_slice(current, allocation.extra),
        custom_slice(current, allocation.even_extra),
        tuple(sorted({s.config.sample_seed for s in base_runs})),
    )


@dataclass(frozen=True)
class CheckResult:
    """What one allocation really gained once trained, beside what the curves predicted.

    ``measured``: the mean over the sample seeds trained so far of holdout accuracy minus the base
    slice's on the same seed, with its interval over the holdout images (:func:`paired_gain`);
    None before any run is trained.
    """

    allocation: str  # "as suggested" or "spread evenly"
    slice: str
    predicted: Estimate | None
    measured: Estimate | None
    runs: int
    planned: int

    @property
    def verdict(self) -> str:
        """Where the measured gain falls against the predicted interval, in words."""
        if self.measured is None:
            return "not trained yet"
        if self.predicted is None:
            return "no forecast to compare with"
        if self.measured.estimate < self.predicted.low:
            return "below the forecast"
        if self.measured.estimate > self.predicted.high:
            return "above the forecast"
        return "inside the forecast"


def check_results(selection: Selection, plan: CheckPlan, level: float = LEVEL) -> tuple[CheckResult, ...]:
    """What each allocation really gained once trained: mean holdout accuracy over the sample
    seeds trained so far, minus the base slice's on the same seeds, beside the predicted gain."""
    by_slice: dict[str, dict[int, Summary]] = defaultdict(dict)
    for summary in selection.summaries:
        by_slice[summary.config.slice][summary.config.sample_seed] = summary
    found = []
    for name, text, predicted in (
        ("as suggested", plan.suggested, plan.allocation.expected_gain),
        ("spread evenly", plan.even, plan.allocation.even_gain),
    ):
        seeds = sorted(set(by_slice.get(text, {})) & set(by_slice[plan.base]))
        pairs = [(by_slice[text][s], by_slice[plan.base][s]) for s in seeds]
        measured = paired_gain(selection.cache_dir, pairs, level) if pairs else None
        found.append(CheckResult(name, text, predicted, measured, len(seeds), len(plan.sample_seeds)))
    return tuple(found)


def paired_gain(cache_dir: Path, pairs: list[tuple[Summary, Summary]], level: float) -> Estimate:
    """The gain of each pair's first run over its second on the same holdout images: per image,
    right-or-wrong under the first minus under the second, averaged over the pairs (the seeds);
    the mean with its t interval over the images. A gain measured on a few holdout images is
    mostly their noise, which an interval over three seeds cannot see: three seeds that each
    gained the same one image of 30 have no spread between them, and are still one image.
    Where no image changed at all, the interval is the share of images that could have changed
    unseen (the exact binomial bound for none observed)."""

    def right(summary: Summary) -> np.ndarray:  # runs of one experiment share the holdout, in order
        found = runs.load(cache_dir, summary.run_id).predictions()
        return (found.predicted == found.labels).astype(np.float64)

    per_image = np.mean([right(first) - right(second) for first, second in pairs], axis=0)
    if per_image.any():
        return t_interval(per_image, level)
    unseen = 1 - ((1 - level) / 2) ** (1 / len(per_image))
    return Estimate(0.0, -unseen, unseen)


def _base_summaries(selection: Selection, base: str | None) -> list[Summary]:
    """The runs of the base slice (the largest uniform slice by default)."""
    points = curve_points(selection)
    text = points[-1].slice if base is None else str(SliceSpec.parse(base))
    found = [s for s in selection.summaries if s.config.slice == text]
    if not found:
        raise UserError(
            f"no cached run of slice {text} in this experiment; measured: "
            + ", ".join(p.slice for p in points)
        )
    return found


def custom_slice(current: dict[str, int], extra: dict[str, int]) -> str:
    """The slice that holds ``current`` plus ``extra`` images of each class (nested, as always)."""
    return str(SliceSpec.parse(";".join(f"{name}={current[name] + extra[name]}" for name in current)))


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
    lines += [f"  {p.images_per_class:>12g}  {p.accuracy:8.1%}  {p.runs:4d}" for p in report.points]
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
    """What a reader must see beside the answer, in words: the plateau verdict, and a warning
    when the answer reaches past where the curves were checked (a contradicted answer is said in
    its place, :attr:`BudgetReport.contradicted`, not here)."""
    found = [report.plateau.verdict] if report.plateau else []
    warnings = (reach_warning(report), ceiling_below(report.points, report.needed.ceiling, report.level))
    return [*found, *(warning for warning in warnings if warning)]


def measured_below(
    points: tuple[CurvePoint, ...], needed: curves.Answer, target: float, n_holdout: int
) -> str | None:
    """A warning when the curve puts the target below the largest slice measured, yet that
    slice's models measure below the target: a room would read "about 32 images" beside "right
    58% at 120" as a contradiction, so the words say which to believe and why, else None."""
    if needed.estimate is None or not points:
        return None
    largest = max(points, key=lambda point: point.images_per_class)
    if needed.estimate.estimate >= largest.images_per_class or largest.accuracy >= target:
        return None
    measured = wilson(round(largest.accuracy * n_holdout), n_holdout)
    why = (
        f"within what {n_holdout:,} holdout images can tell apart (95% interval "
        f"{measured.low:.1%} to {measured.high:.1%})"
        if measured.high >= target
        else "further below than the holdout's noise explains: here the curve is optimistic"
    )
    return (
        f"Measured below the target: the models trained on {largest.images_per_class:,.0f} images per class "
        f"are right {largest.accuracy:.1%} of the time, under {share(target)}, though the curve puts "
        f"{share(target)} at about {needed.estimate.estimate:,.0f}; the difference is {why}. Trust the "
        "measurement: the target is not reached yet."
    )


def ceiling_below(points: tuple[CurvePoint, ...], ceiling: Estimate | None, level: float) -> str | None:
    """A warning when even the top of the fitted ceiling's interval lies below a measured slice:
    "ceiling 61.5%" beside a measured 64.4% reads as a contradiction, so the words say which to
    believe; else None."""
    if ceiling is None or not points:
        return None
    best = max(points, key=lambda point: point.accuracy)
    if ceiling.high >= best.accuracy:
        return None
    return (
        f"The fitted curves level off at {ceiling.estimate:.1%} ({level:.0%} interval {ceiling.low:.1%} to "
        f"{ceiling.high:.1%}), below the {best.accuracy:.1%} measured at {best.images_per_class:,.0f} images "
        "per class: at the top they do not follow the measurements. Trust the measured slices, and read "
        "answers above the ceiling as unknown rather than out of reach."
    )


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
            f"{said}, but {above} of the {len(backtest.rows)} slices were predicted above what they "
            f"measured and {below} below: on this data the curves erred both ways"
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
    return (
        f"Backtest (fitted up to {backtest.fit_up_to:g} images per class, predicting the "
        f"{len(backtest.rows)} larger slices measured): off by {100 * backtest.mean_abs_error:.1f} accuracy "
        f"points on average, {backtest.inside} of {len(backtest.rows)} inside the stated {level:.0%} "
        f"interval{ratio}.{calibrated}"
    )


QUIZ_SHARES = (0.5, 0.05)  # the article asked about 50% and 5% of the data, then 3 and 1 per class
QUIZ_COUNTS = (3, 1)


@dataclass(frozen=True)
class QuizAnswer:
    """One question of the quiz and its answer: means over the slice's runs, each with the 95%
    Wilson interval of the holdout it was measured on (a room should see how sure the number is)."""

    slice: str
    images_per_class: float
    share: float  # of the training pool
    accuracy: Estimate  # the top class is right
    confident: Estimate  # the article's threshold accuracy: right and P(true) > 0.8
    runs: int


def quiz(selection: Selection) -> list[QuizAnswer]:
    """The article's quiz on this data: 50% and 5% of the pool, 3 and 1 images per class (or the
    measured slices nearest to them, each asked once)."""
    points = curve_points(selection)
    pool = max(p.images_per_class for p in points)
    wanted = [pool * share for share in QUIZ_SHARES] + list(QUIZ_COUNTS)
    chosen = []
    for n in wanted:
        nearest = min(points, key=lambda p: abs(math.log(p.images_per_class / n)))
        if nearest not in chosen:
            chosen.append(nearest)
    held = selection.n_holdout
    answers = []
    for p in chosen:
        confident = np.mean(
            [s.holdout.at(0.8).threshold_accuracy for s in selection.summaries if s.config.slice == p.slice]
        )
        answers.append(
            QuizAnswer(
                p.slice,
                p.images_per_class,
                p.images_per_class / pool,
                wilson(p.accuracy * held, held),
                wilson(float(confident) * held, held),
                p.runs,
            )
        )
    return answers
