"""What the curves miss on the user's own data: inner backtests that weight the families and
calibrate the intervals.

The bootstrap resamples runs, so it measures noise around curves that may all have the wrong
shape: on 60,000 Fashion-MNIST images every family, fitted up to 480 images per class, expected
accuracy to keep rising while it had stopped, and 0 of 6 held-out slices fell inside the 80%
interval. The points themselves can tell: fitted on their smaller counts (every origin with at
least :data:`MIN_FIT_POINTS` counts), each family predicts the larger ones, and its misses are
recorded against how far it extrapolated, ``log(n / largest fitted)``.

- **Weights.** A family counts in proportion to ``1 / (e^2 + floor^2)``, ``e`` its root mean
  square miss per unit of log extrapolation: the shape that predicted this data's own larger
  slices best leads (stacking by out-of-sample error, as in Hoiem et al. 2021 and LCDB).
- **Intervals.** The misses, scaled by their log extrapolation and pooled over families by
  weight, are the conformal scores: past the largest fitted count an interval is widened to the
  point plus their (1-level)/2 and (1+level)/2 quantiles times ``log(n / largest)``. Signed, so a
  curve that overshot its own inner slices gets a longer lower arm. With fewer than
  :data:`MIN_ORIGINS` origins there is nothing to calibrate by, and the answer says so.
- **The point.** The answer's point is the power law's (:data:`ANCHOR`), the shape the scaling
  studies fit and the mean of Harvey et al.'s Gaussian process: on the gallery of real curves
  (bench/results/gallery.md) every family that bends over sat below the larger slices of the
  curves that kept rising (the 60,000-image set 1.5 to 3.9 points low at 4,800 per class, the
  power law 0.7), and the inner backtests cannot tell them apart on the small slices, where they
  preferred the bending shapes. The weighted median over families is the point only when the
  power law could not be fitted; the ceiling is the power law's too. The other families and
  their weights make the intervals, and the conformal scores are the anchored point's own
  misses, so the arms are calibrated for it.
- **Noise.** A slice measured there will carry its own noise (seed spread, the holdout's
  binomial noise) on top of the curve's error: it is added in quadrature, so the interval is for
  the accuracy the holdout will show, which is what the backtest checks it against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from core.answers.curves.families import FAMILIES, evaluate
from core.answers.curves.fitting import Fit, Point, fit_all
from core.base.intervals import Estimate

MIN_FIT_POINTS = 5  # an inner backtest fits on at least this many counts
MIN_ORIGINS = 2  # inner backtests needed before their misses calibrate anything
ERROR_FLOOR = 0.002  # accuracy per unit of log extrapolation: no family is trusted beyond this
ANCHOR = "power_law"  # the family whose fit is the answer's point (module docstring, "The point")


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total (not interpolated:
    inf stays inf). Equal weights give the empirical quantile."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, q * cumulative[-1] * (1 - 1e-12)))
    return float(values[order][min(index, len(values) - 1)])


def central(values: Mapping[str, float], weights: Mapping[str, float], anchor: str | None) -> float:
    """The answer's point among the families' ``values``: the ``anchor`` family's where it has a
    value, else the median over families weighted by ``weights``."""
    if anchor is not None and not math.isnan(values.get(anchor, math.nan)):
        return float(values[anchor])
    names = list(values)
    return weighted_quantile(
        np.array([values[name] for name in names]), np.array([weights.get(name, 0.0) for name in names]), 0.5
    )


@dataclass(frozen=True)
class Calibration:
    """The inner backtests' verdict on the fitted families.

    ``weights``: each family's share of the answer (summing to 1); ``errors``: each family's mean
    absolute miss on the inner slices, in accuracy; ``scores`` and ``score_weights``: the misses
    per unit of log extrapolation, every family's, with their weights; ``origins``: how many
    inner fits there were.
    """

    weights: dict[str, float]
    noise: float = 0.0
    errors: dict[str, float] = field(default_factory=dict)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    score_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    origins: int = 0

    @property
    def calibrated(self) -> bool:
        return self.origins >= MIN_ORIGINS and len(self.scores) > 0

    def arms(self, level: float) -> tuple[float, float]:
        """The lower and upper miss per unit of log extrapolation at ``level``: the weighted
        quantiles of the scores, the level raised by one origin's worth (split-conformal's
        finite-sample correction), never inside zero."""
        tail = (1 - level) / 2 * self.origins / (self.origins + 1)
        low = weighted_quantile(self.scores, self.score_weights, tail)
        high = weighted_quantile(self.scores, self.score_weights, 1 - tail)
        return min(low, 0.0), max(high, 0.0)

    def widen(self, estimate: Estimate, ratio: float, level: float) -> Estimate:
        """``estimate`` at ``ratio`` times the largest fitted count, widened by the arms, and by
        the noise of the slice that would be measured there (in quadrature): the interval is
        for what the holdout will show, which is how the backtest scores it."""
        if ratio <= 1:
            return estimate
        point, low, high = estimate.estimate, estimate.low, estimate.high
        if self.calibrated:
            below, above = self.arms(level)
            reach = math.log(ratio)
            low, high = min(low, point + below * reach), max(high, point + above * reach)
        spread = NormalDist().inv_cdf((1 + level) / 2) ** 2 * self.noise
        return Estimate(
            point,
            max(0.0, point - math.sqrt((point - low) ** 2 + spread)),
            min(1.0, point + math.sqrt((high - point) ** 2 + spread)),
        )


def calibrate(points: list[Point], fits: dict[str, Fit], anchor: str | None) -> Calibration:
    """Inner backtests on ``points`` for the families of ``fits``: weights, errors and scores (the
    misses of the point :func:`central` takes with ``anchor``). Equal weights, uncalibrated, when
    the points are too few for two inner fits."""
    misses: dict[str, list[float]] = {name: [] for name in fits}
    held: list[tuple[dict[str, float], Point, float]] = []  # each family's prediction, the point, reach
    origins = 0
    previous: dict[str, tuple[float, ...]] = {}
    for m in range(MIN_FIT_POINTS, len(points)):
        # each inner fit starts from the one before it (fewer points, never the held ones)
        inner = fit_all(points[:m], {name: FAMILIES[name] for name in fits}, previous)
        if not inner:
            continue
        previous = {name: found.params for name, found in inner.items()}
        origins += 1
        for point in points[m:]:
            predicted = {
                name: float(evaluate(FAMILIES[name], np.array(found.params), point.n)[0])
                for name, found in inner.items()
            }
            reach = math.log(point.n / points[m - 1].n)
            held.append((predicted, point, reach))
            for name, value in predicted.items():
                misses[name].append((point.mean - value) / reach)
    noise = float(np.median([p.variance for p in points]))
    if origins < MIN_ORIGINS:
        return Calibration(dict.fromkeys(fits, 1 / len(fits)), noise)
    raw = {
        name: 1 / (float(np.mean(np.square(found))) + ERROR_FLOOR**2)
        for name, found in misses.items()
        if found
    }
    weights = {name: raw.get(name, 0.0) / sum(raw.values()) for name in fits}
    scores = np.array([_score(central(found, weights, anchor), point, reach) for found, point, reach in held])
    return Calibration(
        weights,
        noise,
        {name: float(np.mean(np.abs(found))) for name, found in misses.items() if found},
        scores,
        np.ones(len(scores)),
        origins,
    )


def _score(answer: float, point: Point, reach: float) -> float:
    """The answer's miss at ``point`` per unit of log extrapolation, less one standard error of
    the point's own mean: the measured noise is not a fault of the curve's shape."""
    miss = point.mean - answer
    return math.copysign(max(abs(miss) - math.sqrt(point.variance), 0.0), miss) / reach
