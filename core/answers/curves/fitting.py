"""Measured runs to weighted points, points to fitted curves, and the plain reasons to refuse."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from core.answers.curves.families import FAMILIES, Family, evaluate
from core.base.words import counted, per_class

VAR_FLOOR = 1e-4  # a mean accuracy is never trusted beyond +-1 point: one run must not dominate the fit
Z_NOISE = 2.0  # a rise or a fall (upper half of the points against the lower half) counts beyond 2 SE
NOISE_RATIO = 0.25  # too noisy when the best curve misses the points by more than a quarter of the rise


@dataclass(frozen=True)
class Observation:
    """One measured run: its slice's training images per class and its holdout accuracy."""

    n: float
    accuracy: float
    sample_seed: int = 0
    seed: int = 0


@dataclass(frozen=True)
class Point:
    """The runs at one image count; ``variance`` is the variance of ``mean`` that weights the fit."""

    n: float
    mean: float
    std: float  # over runs, ddof 1; 0 for a single run
    runs: int
    variance: float


@dataclass(frozen=True)
class Fit:
    """One family fitted to the points: its parameters and the unweighted rmse over the point means."""

    family: str
    params: tuple[float, ...]
    rmse: float

    def to_dict(self) -> dict:
        return {"family": self.family, "params": list(self.params), "rmse": self.rmse}


def run_groups(observations: Iterable[Observation]) -> list[tuple[float, np.ndarray]]:
    """Accuracies per image count, sorted by count, each count's runs in seed order.

    The order makes bootstrap resampling independent of the order the runs came in.

    Raises:
        ValueError: an observation has n <= 0 or an accuracy outside [0, 1].
    """
    by_n: dict[float, list[Observation]] = {}
    for obs in observations:
        if not (math.isfinite(obs.n) and obs.n > 0 and 0 <= obs.accuracy <= 1):
            raise ValueError(f"observation {obs} needs n > 0 and an accuracy in [0, 1]")
        by_n.setdefault(float(obs.n), []).append(obs)
    return [
        (n, np.array([o.accuracy for o in sorted(runs, key=_run_order)])) for n, runs in sorted(by_n.items())
    ]


def _run_order(obs: Observation) -> tuple[int, int, float]:
    return obs.sample_seed, obs.seed, obs.accuracy


def curve_points(
    observations: Iterable[Observation], n_holdout: int | None = None, floor: float = VAR_FLOOR
) -> list[Point]:
    """Average the runs at each image count, sorted by count.

    The variance of a mean is its runs' variance over their number, plus ``mean * (1 - mean) /
    n_holdout`` (the holdout's binomial noise, which more runs on the same holdout do not average away)
    when ``n_holdout`` is given, floored at ``floor`` (``VAR_FLOOR`` for fitting). A count measured
    once borrows the run-to-run variance of the nearest count (in log n) measured more than once:
    its spread is unknown, not zero, and the few-shot counts' spread, pooled in, made the whole
    pool (trained once) look as noisy as 3 images per class.

    Raises:
        ValueError: a bad observation, or ``n_holdout`` below 1.
    """
    if n_holdout is not None and n_holdout < 1:
        raise ValueError(f"n_holdout must be at least 1, got {n_holdout}")
    groups = run_groups(observations)
    spreads = {n: float(np.var(runs, ddof=1)) for n, runs in groups if len(runs) > 1}
    points = []
    for n, runs in groups:
        mean = float(runs.mean())
        nearest = min(spreads, key=lambda other: abs(math.log(other / n)), default=None)
        spread = 0.0 if nearest is None else spreads[nearest]
        binomial = mean * (1 - mean) / n_holdout if n_holdout else 0.0
        std = math.sqrt(spread) if len(runs) > 1 else 0.0
        points.append(Point(n, mean, std, len(runs), max(spread / len(runs) + binomial, floor)))
    return points


def point_arrays(points: list[Point]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, means and standard errors of the points."""
    return (
        np.array([p.n for p in points]),
        np.array([p.mean for p in points]),
        np.sqrt([p.variance for p in points]),
    )


def _residuals(free, family, x, y, sigma, fixed):
    return (family.function(x, *free, *fixed) - y) / sigma


def fit_family(family: Family, x, y, sigma, starts) -> np.ndarray | None:
    """Best bounded weighted least-squares fit over the starts; None when every start fails."""
    lower, upper = np.array(family.bounds[0], float), np.array(family.bounds[1], float)
    best, best_cost = None, math.inf
    for start in starts:
        start = np.asarray(start, float)
        free, fixed = np.clip(start[: len(lower)], lower, upper), tuple(start[len(lower) :])
        with np.errstate(all="ignore"):
            try:
                result = least_squares(
                    _residuals, free, bounds=(lower, upper), args=(family, x, y, sigma, fixed)
                )
            except ValueError:  # residuals not finite at the start
                continue
        if result.cost < best_cost:
            best, best_cost = np.concatenate([result.x, fixed]), result.cost
    return best


def fit_all(
    points: list[Point],
    families: Mapping[str, Family] = FAMILIES,
    starts: Mapping[str, tuple[float, ...]] | None = None,
) -> dict[str, Fit]:
    """Fit every family to the points, weighted by the inverse variance of each mean; from
    ``starts[name]`` alone where given (a fit to fewer of the same points, say), else from
    every start the family draws from the data.

    Families whose fit fails are left out; below 3 points every family is, as each has 3 or more
    parameters.
    """
    if len(points) < 3:
        return {}
    x, y, sigma = point_arrays(points)
    fits = {}
    for name, family in families.items():
        given = (starts or {}).get(name)
        params = fit_family(family, x, y, sigma, [given] if given else family.starts(x, y))
        if params is not None:
            rmse = float(np.sqrt(np.mean((evaluate(family, params, x) - y) ** 2)))
            fits[name] = Fit(name, tuple(float(p) for p in params), rmse)
    return fits


def shape_reason(points: list[Point]) -> str | None:
    """Why points too few, flat or falling cannot be extrapolated; None when they rise."""
    if len(points) < 3:
        counts = ", ".join(per_class(p.n) for p in points) or "none"
        return (
            f"Only {counted(len(points), 'distinct image count')} per class measured ({counts}); "
            "fitting a curve needs at least 3."
        )
    rise, noise, where = rise_between_halves(points)
    if rise < -noise:
        return f"Accuracy falls as images are added ({where}); a falling curve cannot be extrapolated."
    if rise <= noise:
        return (
            f"Accuracy moved {100 * rise:+.1f} points ({where}); noise alone (the holdout's size and the "
            f"seeds) can move that difference by {100 * noise:.1f} points either way: too small a rise to "
            "fit a curve to."
        )
    return None


def plateaued(points: list[Point]) -> bool:
    """Whether three or more points neither rise nor fall beyond their noise: more labels buy nothing
    measurable there."""
    if len(points) < 3:
        return False
    rise, noise, _ = rise_between_halves(points)
    return abs(rise) <= noise


def _span(points: list[Point]) -> str:
    low, high = per_class(points[0].n), per_class(points[-1].n)
    counts = f"{low}/class" if len(points) == 1 else f"{low}-{high}/class"
    return f"{np.mean([p.mean for p in points]):.1%} {'at' if len(points) == 1 else 'over'} {counts}"


def rise_between_halves(points: list[Point]) -> tuple[float, float, str]:
    """The rise from the lower half of the points to the upper half (the middle point of an odd count
    sits out), two standard errors of it, and the halves in words. Pooling several points per half
    keeps one noisy few-shot point from hiding a rise."""
    half = len(points) // 2
    low, high = points[:half], points[-half:]
    return (*rise_between(low, high), f"{_span(low)}, {_span(high)}")


def rise_between(low: list[Point], high: list[Point]) -> tuple[float, float]:
    """The mean of ``high``'s points less the mean of ``low``'s, and two standard errors of it."""
    rise = float(np.mean([p.mean for p in high]) - np.mean([p.mean for p in low]))
    noise = Z_NOISE * math.sqrt(
        sum(p.variance for p in low) / len(low) ** 2 + sum(p.variance for p in high) / len(high) ** 2
    )
    return rise, noise


def noise_reason(points: list[Point], fits: dict[str, Fit]) -> str | None:
    """Why rising points that no family follows cannot be extrapolated; None when one does."""
    if not fits:
        return "No curve family could be fitted to these points."
    rmse, rise = min(fit.rmse for fit in fits.values()), points[-1].mean - points[0].mean
    if rmse > NOISE_RATIO * rise:
        return (
            f"The points are too noisy to extrapolate: the best curve misses them by {100 * rmse:.1f} "
            f"accuracy points (rmse) for a total rise of {100 * rise:.1f}."
        )
    return None


def check_extrapolable(points: list[Point]) -> str | None:
    """None when the points can be extrapolated, else one sentence saying why not.

    Refused: fewer than 3 image counts; a last point not above the first by more than two standard
    errors (flat) or below it by more (falling); points that even the best family misses by more than
    a quarter of the rise (noisy or ill-behaved, as about 15% of real learning curves are).
    """
    return shape_reason(points) or noise_reason(points, fit_all(points))
