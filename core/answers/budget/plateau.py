"""Where the measured curve stopped paying, and what to try instead, in a sentence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.answers import curves
from core.answers.budget.selection import Selection
from core.answers.curves.fitting import plateaued, rise_between, shape_reason
from core.base.intervals import wilson
from core.store import runs
from core.store.measured import measured_per_experiment
from core.store.tables import crossover, runs_frame


@dataclass(frozen=True)
class Plateau:
    """Where the measured curve stopped paying: the smallest slice from which no later slice
    rises beyond the noise, the mean accuracy there, and the verdict in words."""

    since: float
    accuracy: float
    verdict: str

    def to_dict(self) -> dict:
        return {"since": self.since, "accuracy": self.accuracy, "verdict": self.verdict}


PLATEAU_SPAN = 4.0  # a flat stretch must span at least this ratio of images per class to count
PLATEAU_VAR_FLOOR = 1e-6  # a slice's mean is trusted to 0.1 point at best


def find_plateau(
    measured: list[curves.Point], crossover: str | None = None, n_holdout: int | None = None
) -> Plateau | None:
    """The plateau of the measured curve, if its largest slices span :data:`PLATEAU_SPAN` or
    more without rising beyond their noise (``core.answers.curves.fitting.plateaued``) after the curve
    rose to them, from the first slice that the later ones do not beat beyond noise.
    ``measured``: the points with the runs' own spread only (every slice is scored on the same
    holdout, so its binomial noise moves them together and says nothing about whether one slice
    beat another). ``crossover``: the slice from which fine-tuning beat this experiment, if it
    did. ``n_holdout``: the holdout's size, for the interval of the accuracy on the plateau (what
    any one model there is measured to, which the average over slices does not narrow)."""
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
    held = ""
    if n_holdout:
        measured_on = wilson(mean * n_holdout, n_holdout)
        held = (
            f", 95% interval {measured_on.low:.1%} to {measured_on.high:.1%} on {n_holdout:,} holdout images"
        )
    verdict = (
        f"Accuracy has not moved beyond noise since about {start.n:,.0f} images per class "
        f"(right {mean:.1%} of the time on average since{held}): more labels of the same kind are "
        f"unlikely to help; {options}."
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
