"""The measured learning curve: one point per uniform slice, its spreads told apart, and the
slices in the words the pages print."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from core.answers.budget.selection import Selection, images_per_class, uniform_slices
from core.base.words import per_class
from core.store.record import Summary


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
            per_class(p.images_per_class),
            f"{p.accuracy:.1%}",
            str(p.runs),
            _spread(p.sample_spread),
            "together with the sample seeds" if p.together else _spread(p.seed_spread),
        )
        for p in points
    )


def curve_points(selection: Selection) -> list[CurvePoint]:
    """The measured learning curve, smallest slice first."""
    uniform = uniform_slices(selection.summaries)
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
