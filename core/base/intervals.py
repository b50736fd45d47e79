"""Numbers from finite samples come with intervals: the estimate type, and the Wilson interval
for a proportion (accuracy on n images, a share automated).

Wilson rather than the normal approximation: it stays inside [0, 1] and is honest at the
extremes (30 of 30 right is not "1.000 ± 0"), which is where small holdouts live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def json_float(value: float | None) -> float | None:
    """The value, or None where JSON has no number for it (NaN, inf)."""
    return float(value) if value is not None and math.isfinite(value) else None


def share(value: float) -> str:
    """An accuracy or share as the pages and the terminal say it: in percent, one decimal where it
    needs one ("86%", "86.5%"). One unit for people on every page; JSON keeps fractions."""
    return f"{100 * value:.1f}".removesuffix(".0") + "%"


@dataclass(frozen=True)
class Estimate:
    """A number from a finite sample, with the ends of its interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return {
            "estimate": json_float(self.estimate),
            "low": json_float(self.low),
            "high": json_float(self.high),
        }

    def overlaps(self, other: Estimate) -> bool:
        return self.low <= other.high and other.low <= self.high


def normal_quantile(p: float) -> float:
    """The standard normal's quantile, from the standard library: this module is imported by
    every command and page, and scipy.stats alone takes most of a second to import."""
    return NormalDist().inv_cdf(p)


def wilson(successes: float, n: int, level: float = 0.95) -> Estimate:
    """The share ``successes / n`` with its Wilson score interval at ``level``; NaN when n is 0."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    z = normal_quantile((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)  # exact ends, not 0.9999999999999999
    return Estimate(p, low, high)


def t_interval(
    values: list[float] | np.ndarray, level: float = 0.8, within: tuple[float, float] = (-math.inf, math.inf)
) -> Estimate:
    """The mean of ``values`` with its Student-t interval at ``level`` (NaN ends for one value):
    the right interval over a few seeds, where a normal one is too narrow. Its ends stop at the
    bounds ``within`` of what is measured (an accuracy is never above 1, a share of labels never
    below the first round's): over two seeds the t interval is wide enough to cross them."""
    from scipy.stats import t as student_t  # lazily: see normal_quantile

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Estimate(mean, math.nan, math.nan)
    half = (
        float(student_t.ppf((1 + level) / 2, len(values) - 1))
        * float(values.std(ddof=1))
        / math.sqrt(len(values))
    )
    return Estimate(mean, max(mean - half, within[0]), min(mean + half, within[1]))
