"""The curve families: holdout accuracy as an increasing function of images per class.

Each family is vectorised: ``function(n, *params)`` broadcasts ``n`` against parameter arrays, so one
call evaluates every bootstrap replicate. Accuracy ceilings are bounded by 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_RANGE = (1e-3, 1e9)  # images per class searched when inverting a curve; beyond it counts as never
BISECT_STEPS = 50  # halvings of log n: far below one image of error over the whole range


@dataclass(frozen=True)
class Family:
    """A curve family ``acc = function(n, *params)``, increasing in n.

    Attributes:
        params: names; the first ``len(bounds[0])`` are fitted, any further ones are fixed by the start.
        bounds: lower and upper bounds of the fitted parameters.
        starts: deterministic starting points from the data (counts, mean accuracies), all tried.
        ceiling: the limit as n grows, from a (rows x params) array; None when the family has none.
    """

    name: str
    function: Callable[..., np.ndarray]
    params: tuple[str, ...]
    bounds: tuple[tuple[float, ...], tuple[float, ...]]
    starts: Callable[[np.ndarray, np.ndarray], list[tuple[float, ...]]]
    ceiling: Callable[[np.ndarray], np.ndarray] | None


def power_law(n, a, b, c):
    """``a - b * n^-c``, with a <= 1, b > 0, 0 < c <= 2 (Hestness et al. report c of 0.07 to 0.35)."""
    return a - b * n**-c


def piecewise_power_law(n, a, b, c_low, c_high, n0):
    """``a - b * (n / n0)^-c_low`` for n < n0, ``a - b * (n / n0)^-c_high`` for n >= n0.

    After Jain et al. (CVPR 2023): the plain power law breaks in the few-shot regime, so the error
    ``1 - acc`` is two power laws above the floor ``1 - a`` joined continuously at ``n0`` (both give
    ``a - b`` there), a <= 1, 0 < b <= 1, 0 < c_low <= 3, 0 < c_high <= 2. ``n0`` is not a fitted
    parameter: every measured count with at least one count below it and three at or above it is
    tried and the best fit kept, so the extrapolating segment always rests on three or more counts.
    Bootstrap refits keep the original ``n0``.
    """
    return a - b * (n / n0) ** -np.where(n < n0, c_low, c_high)


def arctan(n, a, b, c):
    """``a * (2 / pi) * arctan(b * n^c)``, with a <= 1, b > 0, 0 < c <= 2: from 0 up to the ceiling a."""
    return a * (2 / np.pi) * np.arctan(b * n**c)


def logarithmic(n, a, b, c):
    """``a + b * log(n + c)``, with b > 0, c >= 0: no ceiling; it grows until clipped at 1."""
    return a + b * np.log(n + c)


def algebraic_root(n, a, b, c):
    """``a * (n / b) / (1 + (n / b)^c)^(1 / c)``, with a <= 1, b > 0, 0.05 <= c <= 5.

    Mahmood et al.'s algebraic root scaled so that ``a`` is the ceiling: linear in n well below the
    scale b, saturating above it, c setting how sharply.
    """
    return a * (1 + (n / b) ** -c) ** (-1 / c)


def mmf4(n, a, b, k, d):
    """Morgan-Mercer-Flodin: ``a - b / (1 + (n / k)^d)``, with a <= 1, 0 < b <= 1, k > 0, 0.05 <= d <= 5.

    A sigmoid in log n from ``a - b`` up to the ceiling ``a``: it bends over into a plateau, which the
    power laws only approach slowly. One of the two forms that fit most real learning curves best in
    LCDB (Mohr et al. 2023).
    """
    return a - b / (1 + (n / k) ** d)


def exp_approach(n, a, b, k, d):
    """``a - b * exp(-(n / k)^d)``, with a <= 1, 0 < b <= 1, k > 0, 0.05 <= d <= 3: a Weibull-type
    approach to the ceiling ``a``, faster than any power law once n passes the scale k. The most
    pessimistic family beyond the data; the backtest decides how much it counts."""
    return a - b * np.exp(-((n / k) ** d))


def _ceiling_guesses(y: np.ndarray) -> tuple[float, float]:
    top = float(y.max())
    return min(1.0, top + 0.01), min(1.0, top + (1 - top) / 2)


def _power_starts(x, y):
    return [(a, (a - y[0]) * x[0] ** c, c) for a in _ceiling_guesses(y) for c in (0.2, 0.5, 1.0)]


def _piecewise_starts(x, y):
    breaks = range(1, len(x) - 2)  # one count below the break, three at or above it
    return [(a, a - y[i], 0.5, 0.3, x[i]) for i in breaks for a in _ceiling_guesses(y)]


def _arctan_starts(x, y):
    m = len(x) // 2
    guesses = [(a, math.tan(math.pi / 2 * min(y[m] / a, 0.99))) for a in _ceiling_guesses(y)]
    return [(a, t / x[m] ** c, c) for a, t in guesses for c in (0.5, 1.0)]


def _log_starts(x, y):
    slope = max((y[-1] - y[0]) / math.log(x[-1] / x[0]), 1e-3)
    return [(y[0] - slope * math.log(x[0] + c), slope, c) for c in (0.0, 1.0, 10.0)]


def _root_starts(x, y):
    m = len(x) // 2
    ratios = [(a, float(np.clip(y[m] / a, 0.01, 0.99))) for a in _ceiling_guesses(y)]
    return [(a, x[m] * (r**-c - 1) ** (1 / c), c) for a, r in ratios for c in (0.5, 1.0, 2.0)]


def _sigmoid_starts(x, y):
    middle = float(np.exp(np.mean(np.log(x))))
    return [(a, a - y[0] + 0.05, middle, d) for a in _ceiling_guesses(y) for d in (0.5, 1.0)]


def _first_param(params: np.ndarray) -> np.ndarray:
    return params[..., 0]


def _four_parameter(name: str, function: Callable[..., np.ndarray], d_max: float) -> Family:
    """A family ``function(n, a, b, k, d)`` rising by ``b`` to the ceiling ``a`` around the scale
    ``k``, ``d`` setting how sharply (at most ``d_max``)."""
    bounds = ((0, 1e-6, 1e-3, 0.05), (1, 1, 1e7, d_max))
    return Family(name, function, ("a", "b", "k", "d"), bounds, _sigmoid_starts, _first_param)


ABC = ("a", "b", "c")
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("power_law", power_law, ABC, ((0, 1e-6, 1e-3), (1, 100, 2)), _power_starts, _first_param),
        Family(
            "piecewise_power_law",
            piecewise_power_law,
            ("a", "b", "c_low", "c_high", "n0"),
            ((0, 1e-6, 1e-3, 1e-3), (1, 1, 3, 2)),
            _piecewise_starts,
            _first_param,
        ),
        Family("arctan", arctan, ABC, ((0, 1e-6, 1e-3), (1, 1e3, 2)), _arctan_starts, _first_param),
        Family("logarithmic", logarithmic, ABC, ((-5, 1e-6, 0), (2, 1, 1e3)), _log_starts, None),
        Family(
            "algebraic_root", algebraic_root, ABC, ((0, 1e-3, 0.05), (1, 1e4, 5)), _root_starts, _first_param
        ),
        _four_parameter("mmf4", mmf4, d_max=5),
        _four_parameter("exp_approach", exp_approach, d_max=3),
    )
}


def evaluate(family: Family, params: np.ndarray, n) -> np.ndarray:
    """Accuracy at ``n`` of each parameter row (NaN rows give NaN), clipped to [0, 1]."""
    with np.errstate(all="ignore"):
        return np.clip(family.function(n, *np.atleast_2d(params).T), 0.0, 1.0)


def inverse(family: Family, params: np.ndarray, target: float) -> np.ndarray:
    """Images per class at which each parameter row first reaches ``target``: inf where it never does.

    Bisection on log n over ``N_RANGE``, all rows at once (the families are increasing in n).
    """
    params = np.atleast_2d(params)
    low, high = np.full(len(params), math.log(N_RANGE[0])), np.full(len(params), math.log(N_RANGE[1]))
    reachable = evaluate(family, params, np.exp(high)) >= target
    if family.ceiling:
        reachable &= family.ceiling(params) > target
    for _ in range(BISECT_STEPS):
        middle = (low + high) / 2
        above = evaluate(family, params, np.exp(middle)) >= target
        low, high = np.where(above, low, middle), np.where(above, middle, high)
    return np.where(np.isnan(params[:, 0]), np.nan, np.where(reachable, np.exp(high), np.inf))
