"""Sharing a budget of extra labels among classes, from per-class learning curves (Slice Tuner's idea)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from core.answers.curves.answers import Ensemble, check_fraction, ensemble, quantiles
from core.answers.curves.calibration import weighted_quantile
from core.answers.curves.families import FAMILIES, evaluate
from core.answers.curves.fitting import Observation, curve_points, plateaued
from core.base.intervals import Estimate


@dataclass(frozen=True)
class Allocation:
    """Extra labels per class, and the overall accuracy gain they and an even split are predicted to give.

    Gains are in overall holdout accuracy over the current labels; classes in ``notes`` count as 0.
    """

    extra: dict[str, int]
    expected_gain: Estimate
    even_gain: Estimate
    even_extra: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "extra": self.extra,
            "expected_gain": self.expected_gain.to_dict(),
            "even_gain": self.even_gain.to_dict(),
            "even_extra": self.even_extra,
            "notes": self.notes,
        }


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
    """The median over families of the original fits' accuracy at ``n``, each family weighted by
    its inner backtests (as every answer is)."""
    names = list(fitted.params)
    return weighted_quantile(
        np.array([evaluate(FAMILIES[name], fitted.params[name][:1], n)[0] for name in names]),
        np.array([fitted.weights.get(name, 0.0) for name in names]),
        0.5,
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


def _gain(fitted: dict[str, Ensemble], weights, current, extra, level: float) -> Estimate:
    """The median curves' gain for the point; each family x replicate summed over classes for the interval."""
    if not fitted:
        return Estimate(0.0, 0.0, 0.0)
    point = sum(
        weights[name]
        * (_median_curve(curves, current[name] + extra[name]) - _median_curve(curves, current[name]))
        for name, curves in fitted.items()
    )
    pooled = sum(
        weights[name] * _deltas(curves, current[name], extra[name]) for name, curves in fitted.items()
    )
    low, high = quantiles(pooled[~np.isnan(pooled)], level)
    return Estimate(point, min(low, point), max(high, point))


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
    whose median-over-families curve gains most. A class on its plateau gets none; one whose curve
    cannot be extrapolated otherwise (falling, too noisy) gets its even share; ``notes`` says which.
    ``room`` caps each class's extra labels (the unlabelled images
    left, when a suggestion is to be checked by training it); ``holdout_counts`` adds each class's
    binomial holdout noise to its curve's weights.

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
    even, rng, fitted, notes = _even_split(classes, budget, room), np.random.default_rng(seed), {}, []
    extra = {}
    for name in classes:
        held = (holdout_counts or {}).get(name)
        curves = ensemble(per_class[name], n_boot, rng, held)
        if not isinstance(curves, str):
            fitted[name] = curves
        elif plateaued(curve_points(per_class[name], held)):
            extra[name] = 0
            notes.append(
                f"{name}: already on its plateau ({curves}) It gets no labels: they would buy nothing."
            )
        else:
            extra[name] = even[name]
            notes.append(f"{name}: {curves} It gets the even share of {even[name]} labels.")
    extra |= _greedy(fitted, class_weights, current, budget - sum(extra.values()), room)
    extra = {name: extra[name] for name in classes}
    left = budget - sum(extra.values())
    if left > 0:  # no curve could take them (none fitted, or no room left where they were)
        spread = _even_split(classes, left, {name: room[name] - extra[name] for name in classes})
        extra = {name: extra[name] + spread[name] for name in classes}
        notes.append(f"{sum(spread.values())} label(s) no fitted curve could use were spread evenly.")
    return Allocation(
        extra,
        _gain(fitted, class_weights, current, extra, level),
        _gain(fitted, class_weights, current, even, level),
        even,
        notes,
    )
