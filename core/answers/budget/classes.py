"""Labels per class: each class's own curve, sharing a budget of labels among the classes, and
checking a suggested share by training it."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.answers import curves
from core.answers.budget.level import LEVEL
from core.answers.budget.points import CurvePoint, curve_points
from core.answers.budget.selection import Selection
from core.answers.curves.allocation import recall_interval
from core.base.errors import UserError
from core.base.intervals import Estimate, t_interval
from core.base.words import per_class
from core.data.splits import SliceSpec, make_splits
from core.store import runs
from core.store.config import RunConfig
from core.store.measured import pool_sizes
from core.store.record import Summary


def per_class_counts(selection: Selection, summary: Summary) -> dict[str, int]:
    """Training images of each class in a run's slice (drawn again from its split and seeds)."""
    dataset, config = selection.dataset, summary.config
    splits = make_splits(dataset.labels, dataset.classes, *config.split)
    train = splits.slice_indices(SliceSpec.parse(config.slice), config.sample_seed, dataset.classes)
    counts = np.bincount(dataset.labels[train], minlength=len(dataset.classes))
    return dict(zip(dataset.classes, (int(c) for c in counts), strict=True))


def uneven_classes(selection: Selection, largest: CurvePoint) -> str | None:
    """The sentence that the largest slice gave classes different counts, else None. A share of
    the pool (``100%``, ``P%``) of classes of unequal size sits on the curve at the average count:
    "163 images per class" where one class had 48 and another 320."""
    counts = per_class_counts(selection, _base_summaries(selection, largest.slice)[0]).values()
    low, high = min(counts), max(counts)
    if low == high:
        return None
    return (
        f"Classes differ in size: the models at {largest.slice} had {low:,} to {high:,} training images per "
        f"class, and the curve places them at their average, {per_class(largest.images_per_class)}. Read "
        f"counts above {low:,} as an average over the classes, not as images every class has."
    )


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
