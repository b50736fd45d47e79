"""Sharing a budget of extra labels among classes, from per-class learning curves (Slice Tuner's idea)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core.answers.curves.answers import Ensemble, check_fraction, ensemble, quantiles
from core.answers.curves.families import FAMILIES, evaluate
from core.answers.curves.fitting import Observation, Point, curve_points, plateaued, rise_between_halves
from core.base.intervals import Estimate, normal_quantile, wilson
from core.base.progress import progress
from core.base.words import counted


@dataclass(frozen=True)
class Allocation:
    """Extra labels per class, and the overall accuracy gain they and an even split are predicted to give.

    Gains are in overall holdout accuracy over the current labels, from the classes with a curve
    (classes in ``notes`` count as no gain); ``None`` where no class with a curve gets labels, or
    the replicates did not spread, so there is no interval to state. ``notes`` says in plain words,
    from the final shares, why each class without a usable curve got what it got; ``even_fallback``
    is set when no class had one, so the suggestion is the even split.
    """

    extra: dict[str, int]
    expected_gain: Estimate | None
    even_gain: Estimate | None
    even_extra: dict[str, int]
    notes: list[str] = field(default_factory=list)
    even_fallback: bool = False

    def to_dict(self) -> dict:
        return {
            "extra": self.extra,
            "expected_gain": estimate_dict(self.expected_gain),
            "even_gain": estimate_dict(self.even_gain),
            "even_extra": self.even_extra,
            "notes": self.notes,
        }


def estimate_dict(e: Estimate | None) -> dict:
    """An estimate as JSON, with the same keys (all null) where there is none."""
    return e.to_dict() if e is not None else dict.fromkeys(("estimate", "low", "high"))


def _even_split(classes: list[str], budget: int, room: Mapping[str, float]) -> dict[str, int]:
    """The budget spread evenly, one label at a time round the classes that still have room."""
    extra, left = dict.fromkeys(classes, 0), budget
    while left > 0:
        open_classes = [name for name in classes if extra[name] < room[name]]
        if not open_classes:
            break
        for name in open_classes[:left]:
            extra[name] += 1
        left -= min(left, len(open_classes))
    return extra


def _median_curve(fitted: Ensemble, n: float) -> float:
    """The original fits' accuracy at ``n`` as every answer takes it (:meth:`Ensemble.central`)."""
    return fitted.central(
        {name: float(evaluate(FAMILIES[name], rows[:1], n)[0]) for name, rows in fitted.params.items()}
    )


def _deltas(fitted: Ensemble, start: float, extra: int) -> np.ndarray:
    """Gains of ``extra`` labels, one row per registered family, one column per fit (original, replicates).

    A family not fitted to this class, or a failed refit, takes the median of its column, so that
    classes fitted by different families still add up family by family.
    """
    columns = len(next(iter(fitted.params.values())))
    deltas = np.full((len(FAMILIES), columns), np.nan)
    for i, (name, family) in enumerate(FAMILIES.items()):
        if name in fitted.params:
            rows = fitted.params[name]
            deltas[i] = evaluate(family, rows, start + extra) - evaluate(family, rows, start)
    with np.errstate(all="ignore"):
        return np.where(np.isnan(deltas), np.nanmedian(deltas, axis=0), deltas)


def _greedy(
    fitted: dict[str, Ensemble],
    weights: Mapping[str, float],
    current: Mapping[str, float],
    budget: int,
    room: Mapping[str, float],
) -> dict[str, int]:
    extra, chunk, left = dict.fromkeys(fitted, 0), max(1, budget // 50), budget
    while left > 0:
        gains = {}
        for name, curves in fitted.items():
            step = int(min(chunk, left, room[name] - extra[name]))
            if step > 0:
                now = current[name] + extra[name]
                gains[name] = (
                    weights[name] * (_median_curve(curves, now + step) - _median_curve(curves, now)),
                    step,
                )
        if not gains:
            break
        best = max(gains, key=lambda name: gains[name][0])
        extra[best], left = extra[best] + gains[best][1], left - gains[best][1]
    return extra


def _gain(fitted: dict[str, Ensemble], weights, current, extra, level: float) -> Estimate | None:
    """The median curves' gain for the point; each family x replicate summed over classes for the interval.

    None where no class with a curve gets labels (the curves predict nothing for the others), or
    where the replicates did not spread (one run per count): a zero-width interval would claim a
    certainty the runs do not have.
    """
    if not any(extra[name] for name in fitted):
        return None
    point = sum(
        weights[name]
        * (_median_curve(curves, current[name] + extra[name]) - _median_curve(curves, current[name]))
        for name, curves in fitted.items()
    )
    pooled = sum(
        weights[name] * _deltas(curves, current[name], extra[name]) for name, curves in fitted.items()
    )
    low, high = quantiles(pooled[~np.isnan(pooled)], level)
    low, high = min(low, point), max(high, point)
    return Estimate(point, low, high) if high > low else None


def recall_interval(point: Point, level: float, n_holdout: int | None = None) -> Estimate:
    """A class's mean recall at one count with its normal interval, from the spread of its runs and
    its holdout's binomial noise (the point's variance), kept inside [0, 1]; with ``n_holdout``,
    never narrower than the Wilson interval of that many images: at 100% recall the binomial
    variance is 0, and "100% (99% to 100%)" on 10 images would claim what 10 images cannot."""
    half = normal_quantile((1 + level) / 2) * np.sqrt(point.variance)
    low, high = max(0.0, point.mean - half), min(1.0, point.mean + half)
    if n_holdout:
        images = wilson(point.mean * n_holdout, n_holdout, level)
        low, high = min(low, images.low), max(high, images.high)
    return Estimate(point.mean, low, high)


def _recall_said(point: Point, level: float, n_holdout: int | None) -> str:
    """A class's mean recall at one count with its interval, in percent."""
    recall = recall_interval(point, level, n_holdout)
    labels = "label" if point.n == 1 else "labels"
    return f"{recall.estimate:.0%} ({recall.low:.0%} to {recall.high:.0%}) at {point.n:g} {labels}"


def _shape_said(points: list[Point], level: float, n_holdout: int | None) -> str:
    """Why a class's curve cannot be used, in plain words, with the recalls that show it. A flat
    curve is not called a plateau: with a small holdout the noise can hide a real rise."""
    if len(points) < 3:
        return (
            f"its recall was measured at {counted(len(points), 'label count')} only, too few to draw a curve"
        )
    seen = f"{_recall_said(points[0], level, n_holdout)}, {_recall_said(points[-1], level, n_holdout)}"
    if plateaued(points):  # said by the halves it compares: first and last alone can differ widely
        rise, noise, halves = rise_between_halves(points)
        return (
            f"its recall did not rise measurably as labels were added ({halves}: {100 * rise:+.0f} "
            f"points, within the {100 * noise:.0f} points its noise allows): any rise is hidden in the "
            "noise of its few holdout images, so the runs cannot say what more labels buy"
        )
    half = len(points) // 2
    if np.mean([p.mean for p in points[-half:]]) < np.mean([p.mean for p in points[:half]]):
        return f"its recall fell as labels were added ({seen}); a falling curve cannot be extended"
    return f"its recall jumps up and down between label counts ({seen}), too unevenly for a curve to follow"


def _share_said(extra: int, even: int, fallback: bool) -> str:
    """What a class without a usable curve gets, said from the final numbers so text and table agree."""
    if fallback or extra == even:
        return f"It gets its even share: {counted(extra, 'label')}."
    if extra == 0:
        return (
            "The suggestion puts labels only where the runs show they raise recall, so it gets none "
            f"(an even split would give it {even})."
        )
    return f"It gets {counted(extra, 'label')}, some of them ones the classes with a curve had no room for."


def allocate(
    per_class: Mapping[str, list[Observation]],
    class_weights: Mapping[str, float],
    current: Mapping[str, float],
    budget: int,
    level: float = 0.8,
    n_boot: int = 200,
    seed: int = 0,
    room: Mapping[str, int] | None = None,
    holdout_counts: Mapping[str, int] | None = None,
) -> Allocation:
    """Share ``budget`` extra labels among classes to raise overall holdout accuracy the most.

    ``per_class`` holds each class's runs (its holdout recall against its images), ``class_weights``
    each class's share of the holdout, ``current`` its labels now. Overall accuracy is
    ``sum_c w_c * recall_c(n_c)``; chunks of ``max(1, budget // 50)`` labels go one by one to the class
    whose median-over-families curve gains most. A class whose recall does not rise measurably gets
    none (nothing measured says they pay); one whose curve cannot be extended otherwise (falling,
    too noisy) gets its even share. When no class has a curve the suggestion is the even split:
    nothing then ranks the classes. ``notes`` says, from the final shares, what each class without a
    curve got and why. ``room`` caps each class's extra labels (the unlabelled images left, when a
    suggestion is to be checked by training it); ``holdout_counts`` adds each class's binomial
    holdout noise to its curve's weights.

    Raises:
        ValueError: no classes, a class without a weight or current count, a negative budget or a bad level.
    """
    check_fraction(level, "level")
    classes = sorted(per_class)
    missing = [name for name in classes if name not in class_weights or name not in current]
    if missing or budget < 0 or not classes:
        raise ValueError(
            f"need classes, a budget >= 0, and a weight and current count for each; missing {missing}"
        )
    room = {name: (room or {}).get(name, np.inf) for name in classes}
    even = _even_split(classes, budget, room)
    fitted, shapes = _class_curves(per_class, n_boot, np.random.default_rng(seed), holdout_counts or {})
    extra, notes = _shares(fitted, shapes, class_weights, current, budget, room, even)
    if not fitted:
        notes.insert(
            0,
            "No class's recall rose measurably and smoothly enough to draw its curve, so nothing ranks "
            "the classes: the suggestion is the even split, and no gain can be predicted.",
        )
    notes += [
        f"{name}: {_shape_said(points, level, (holdout_counts or {}).get(name))}. "
        f"{_share_said(extra[name], even[name], not fitted)}"
        for name, points in shapes.items()
    ]
    return Allocation(
        extra,
        _gain(fitted, class_weights, current, extra, level),
        _gain(fitted, class_weights, current, even, level),
        even,
        notes,
        even_fallback=not fitted,
    )


def _class_curves(
    per_class: Mapping[str, list[Observation]],
    n_boot: int,
    rng: np.random.Generator,
    holdout_counts: Mapping[str, int],
) -> tuple[dict[str, Ensemble], dict[str, list[Point]]]:
    """Each class's fitted curves, or, where none can be drawn, its measured points (to say why)."""
    fitted, shapes = {}, {}
    for name in progress(sorted(per_class), "fitting each class's curve", enabled=False, unit="class"):
        curves = ensemble(per_class[name], n_boot, rng, holdout_counts.get(name))
        if isinstance(curves, str):
            shapes[name] = curve_points(per_class[name], holdout_counts.get(name))
        else:
            fitted[name] = curves
    return fitted, shapes


def _shares(
    fitted: dict[str, Ensemble],
    shapes: dict[str, list[Point]],
    weights: Mapping[str, float],
    current: Mapping[str, float],
    budget: int,
    room: Mapping[str, float],
    even: dict[str, int],
) -> tuple[dict[str, int], list[str]]:
    """The final shares, and a note when labels the curves had no room for were spread evenly."""
    classes = sorted([*fitted, *shapes])
    if not fitted:
        return dict(even), []
    extra = {name: 0 if plateaued(points) else even[name] for name, points in shapes.items()}
    extra |= _greedy(fitted, weights, current, budget - sum(extra.values()), room)
    extra = {name: extra[name] for name in classes}
    left = budget - sum(extra.values())
    if left <= 0:
        return extra, []
    spread = _even_split(classes, left, {name: room[name] - extra[name] for name in classes})
    extra = {name: extra[name] + spread[name] for name in classes}
    return extra, [
        f"{counted(sum(spread.values()), 'label')} the classes with a curve had no room for "
        "were spread evenly."
    ]
