"""What would make an answer possible when the learning curve gives none.

A curve that does not rise beyond its noise, or that no family follows, gets no estimate: honest,
but a page that stops there leaves the user nowhere. The usual cause on a small dataset is the
holdout: 30 images measure each accuracy to about +-15 points, more than the whole curve rises.
A larger holdout (at the cost of training images) or more slices and sample seeds are the two
remedies; this module picks the one that applies and the runs that carry it out.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from core.answers.budget import Analysis, curve_grid
from core.base.errors import UserError
from core.store.config import RunConfig, Split

LARGER_HOLDOUT = 0.3  # of each class: beyond it the training pool shrinks more than the noise does
Z_NOISE = 2.0  # the noise stated is two binomial standard errors of the largest slice's accuracy


@dataclass(frozen=True)
class NextStep:
    """A sentence saying why there is no answer and what would give one; the button's words; the
    split the runs use (the one new runs should use from then on) and the runs to queue."""

    sentence: str
    button: str
    split: Split
    configs: tuple[RunConfig, ...]


def holdout_noise(accuracy: float, images: int) -> float:
    """Two binomial standard errors of an accuracy measured on ``images`` holdout images, the
    accuracy first pulled toward a half by two right and two wrong images (Agresti and Coull):
    on 3 holdout images all right, the plain formula said "uncertain by about ±0%"."""
    adjusted = (accuracy * images + 2) / (images + 4)
    return Z_NOISE * math.sqrt(adjusted * (1 - adjusted) / images)


def next_step(analysis: Analysis) -> NextStep | None:
    """The remedy when ``analysis`` has no fitted curve: a larger holdout where the dataset
    allows one, else the curve's missing runs; None when it has a curve, or when both remedies
    are spent (then the curve is flat: the plateau verdict speaks)."""
    if not isinstance(analysis.fitted, str):
        return None
    selection = analysis.selection
    base = selection.summaries[0].config
    images, accuracy = selection.n_holdout, analysis.points[-1].accuracy
    noise = holdout_noise(accuracy, images)
    if base.holdout < LARGER_HOLDOUT - 1e-9:
        larger = dataclasses.replace(base, holdout=LARGER_HOLDOUT)
        try:
            configs = curve_grid(larger, selection.cache_dir)
        except UserError:  # a class too small to hold out that many: the other remedy
            configs = []
        if configs:
            more = round(images * LARGER_HOLDOUT / base.holdout)
            return NextStep(
                f"Each accuracy here rests on {images:,} holdout images, so it is uncertain by "
                f"about ±{noise:.0%}: as much as the curve rises. Holding out {LARGER_HOLDOUT:.0%} of "
                f"each class (about {more:,} images) would cut that to about "
                f"±{holdout_noise(accuracy, more):.0%}, at the cost of fewer images to train on; "
                "the learning curve measured on it can then be extrapolated.",
                f"Measure the learning curve on a {LARGER_HOLDOUT:.0%} holdout ({len(configs)} runs)",
                Split(LARGER_HOLDOUT, base.val, base.split_seed),
                tuple(configs),
            )
    return _missing_runs(analysis, noise)


def _missing_runs(analysis: Analysis, noise: float) -> NextStep | None:
    selection = analysis.selection
    base = selection.summaries[0].config
    done = {(s.config.slice, s.config.sample_seed, s.config.seed) for s in selection.summaries}
    missing = [
        c for c in curve_grid(base, selection.cache_dir) if (c.slice, c.sample_seed, c.seed) not in done
    ]
    if not missing:
        return None
    return NextStep(
        f"Each accuracy here rests on {selection.n_holdout:,} holdout images (about ±{noise:.0%}). "
        "More slices, each measured on three samples of the training images, average out more of "
        "that noise.",
        f"Measure the rest of the learning curve ({len(missing)} runs)",
        base.split,
        tuple(missing),
    )
