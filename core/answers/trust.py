"""Can I trust it? Calibration and the human-in-the-loop threshold of cached runs, one run at a time
and against images per class for an experiment.

It reads runs through :mod:`core.store.runs` (holdout predictions as committed, validation
probabilities as committed or recomputed for older runs) and leaves the arithmetic to
:mod:`core.answers.calibration`: the temperature and the threshold are always chosen on the fixed
validation set and reported on the holdout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.answers import budget, calibration
from core.base.errors import check_share
from core.engine.pipeline import validation_of
from core.store import runs
from core.store.record import Summary


def min_kept(n_val: int) -> int:
    """How many validation images a threshold must keep to count: 2% of them, at least 5 (all of
    a smaller set), so that one lucky confident image cannot make a target look reachable."""
    return min(n_val, max(5, n_val // 50))


def run_calibration(
    cache_dir: Path, rid: str, scheme: str = "width", n_bins: int = 15
) -> calibration.Calibration:
    """A run's calibration before and after temperature scaling.

    Raises:
        UserError: the run is missing or damaged, or its validation set cannot be rebuilt.
    """
    run = runs.load(cache_dir, rid)
    return calibration.calibrate(validation_of(run), run.predictions(), n_bins, scheme)


def run_threshold(
    cache_dir: Path, rid: str, target: float, scaled: bool = False
) -> calibration.ThresholdPlan:
    """The threshold a run's validation set gives for ``target``, and what it does on the holdout
    (after temperature scaling with ``scaled``: the threshold is then on scaled confidences).

    Raises:
        UserError: a target outside (0, 1), or the run is missing or damaged.
    """
    check_share("--target", target)
    run = runs.load(cache_dir, rid)
    validation = validation_of(run)
    temperature = calibration.fit_temperature(validation.probs, validation.labels) if scaled else 1.0
    return calibration.threshold_for(
        validation, run.predictions(), target, temperature, min_kept(len(validation.labels))
    )


@dataclass(frozen=True)
class SizePoint:
    """A trust measure at one slice of an experiment: means over the slice's runs."""

    slice: str
    images_per_class: float
    runs: int
    ece: float
    ece_scaled: float
    automated_share: float | None  # at the target, where the threshold exists for every run
    kept_accuracy: float | None
    ece_interval: tuple[float, float]  # means of the runs' 95% bounds: the holdout's own uncertainty
    automated_interval: tuple[float, float] | None
    ece_scaled_interval: tuple[float, float]


def by_size(selection: budget.Selection, target: float, n_boot: int = 200) -> list[SizePoint]:
    """ECE before and after scaling, and the share automated at ``target``, against images per
    class for an experiment (uniform slices, smallest first)."""
    groups: dict[str, list[Summary]] = defaultdict(list)
    for point in budget.curve_points(selection):
        groups[point.slice] = [s for s in selection.summaries if s.config.slice == point.slice]
    found = []
    for text, group in groups.items():
        measures = [_measure(selection, s, target, n_boot) for s in group]
        plans = [plan for _, plan in measures]
        usable = all(p.threshold is not None and p.automated_share is not None for p in plans)
        found.append(
            SizePoint(
                text,
                float(np.mean([budget.images_per_class(s) for s in group])),
                len(group),
                float(np.mean([c.ece.estimate for c, _ in measures])),
                float(np.mean([c.ece_scaled.estimate for c, _ in measures])),
                float(np.mean([p.automated_share.estimate for p in plans])) if usable else None,
                float(np.nanmean([p.kept_accuracy.estimate for p in plans])) if usable else None,
                _mean_bounds([c.ece for c, _ in measures]),
                _mean_bounds([p.automated_share for p in plans]) if usable else None,
                _mean_bounds([c.ece_scaled for c, _ in measures]),
            )
        )
    return found


def _mean_bounds(estimates: list) -> tuple[float, float]:
    """The mean low and high ends of the runs' intervals (:class:`core.base.intervals.Estimate`)."""
    return float(np.mean([e.low for e in estimates])), float(np.mean([e.high for e in estimates]))


def _measure(selection: budget.Selection, summary: Summary, target: float, n_boot: int):
    run = runs.load(selection.cache_dir, summary.run_id)
    validation, holdout = validation_of(run), run.predictions()
    measured = calibration.calibrate(validation, holdout, n_boot=n_boot)
    return measured, calibration.threshold_for(
        validation, holdout, target, 1.0, min_kept(len(validation.labels))
    )
