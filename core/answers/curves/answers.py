"""Bootstrap ensembles of fits, and the answers built on them: accuracy at n, n for an accuracy, backtests."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from core.answers.curves.calibration import ANCHOR, Calibration, calibrate, central, weighted_quantile
from core.answers.curves.families import FAMILIES, N_RANGE, Family, evaluate, inverse
from core.answers.curves.fitting import (
    Fit,
    Observation,
    curve_points,
    fit_all,
    fit_family,
    noise_reason,
    point_arrays,
    run_groups,
    shape_reason,
)
from core.base.intervals import Estimate, json_float, share
from core.base.words import continued, per_class, roughly


@dataclass(frozen=True)
class Answer:
    """An estimate with its interval, or a plain ``reason`` why there is none.

    ``per_family`` holds each family's answer on the original data (inf: never reached);
    ``point`` the curve's own answer, also where its interval gives no estimate (None where
    nothing was fitted).
    """

    estimate: Estimate | None
    beyond_reach: bool = False
    reason: str | None = None
    ceiling: Estimate | None = None
    per_family: dict[str, float] = field(default_factory=dict)
    point: float | None = None

    def to_dict(self) -> dict:
        return {
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "beyond_reach": self.beyond_reach,
            "reason": self.reason,
            "ceiling": self.ceiling.to_dict() if self.ceiling else None,
            "per_family": {name: json_float(value) for name, value in self.per_family.items()},
        }


@dataclass(frozen=True)
class BacktestRow:
    n: float
    measured: float
    predicted: float
    low: float
    high: float
    inside: bool


@dataclass(frozen=True)
class Backtest:
    """Curves fitted up to ``fit_up_to`` images per class, checked against the larger measured counts.

    ``mean_abs_error`` is in accuracy (0.012 is 1.2 points), ``coverage`` the share of rows inside their
    interval, ``ratio_images`` the count the curves say reaches the accuracy measured at the largest
    count over that count (above 1: the curves were pessimistic; None: never reached).
    """

    fit_up_to: float
    rows: tuple[BacktestRow, ...] = ()
    mean_abs_error: float | None = None
    coverage: float | None = None
    ratio_images: float | None = None
    reason: str | None = None
    calibrated: bool = False

    @property
    def inside(self) -> int:
        """How many held-out slices fell inside their interval (every wording counts them here)."""
        return sum(row.inside for row in self.rows)

    def to_dict(self) -> dict:
        return {
            "fit_up_to": self.fit_up_to,
            "calibrated": self.calibrated,
            "rows": [vars(row) for row in self.rows],
            "mean_abs_error": self.mean_abs_error,
            "coverage": self.coverage,
            "ratio_images": json_float(self.ratio_images),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Ensemble:
    """Fits to the original points, their bootstrap refits, and what the inner backtests on the
    points say about them.

    ``params`` maps each fitted family to a (1 + n_boot) x parameters array: row 0 the original fit,
    then one row per replicate, NaN where a refit failed. ``largest``: the largest count fitted;
    beyond it the answers are extrapolations, widened by ``calibration``. ``anchor``: the family
    whose original fit is every answer's point (None: the weighted median over families), see
    :func:`~core.answers.curves.calibration.central`.
    """

    fits: dict[str, Fit]
    params: dict[str, np.ndarray]
    calibration: Calibration
    largest: float
    anchor: str | None = None

    def central(self, values: dict[str, float]) -> float:
        """The point among the families' ``values`` (each family's answer on the original data)."""
        return central(values, self.weights, self.anchor)

    @property
    def weights(self) -> dict[str, float]:
        return self.calibration.weights


def ensemble(
    observations: Iterable[Observation],
    n_boot: int,
    rng: np.random.Generator,
    n_holdout: int | None = None,
    families: tuple[str, ...] | None = None,
    calibrated: bool = True,
    anchor: str | None = ANCHOR,
) -> Ensemble | str:
    """The ensemble of the observations, or the one-sentence reason they cannot be extrapolated.

    ``families`` (all by default) are fitted; ``calibrated=False`` leaves out the inner backtests
    (equal weights, bootstrap intervals only, the weighted median as the point) and ``anchor=None``
    takes the weighted median as the point of a calibrated answer: the baselines the benchmarks
    compare against.
    Each replicate resamples runs with replacement within every count, keeps the original weights
    (so a resample that happens to repeat one run does not get an inflated weight) and refits each
    family from its original parameters only: one start instead of several keeps it fast.
    """
    observations = list(observations)
    points = curve_points(observations, n_holdout)
    reason = shape_reason(points)
    chosen = FAMILIES if families is None else {name: FAMILIES[name] for name in families}
    fits = {} if reason else fit_all(points, chosen)
    reason = reason or noise_reason(points, fits)
    if reason:
        return reason
    x, _, sigma = point_arrays(points)
    anchor = anchor if calibrated and anchor in fits else None
    calibration = (
        calibrate(points, fits, anchor) if calibrated else Calibration(dict.fromkeys(fits, 1 / len(fits)))
    )
    draws = [
        runs[rng.integers(0, len(runs), (n_boot, len(runs)))].mean(1) for _, runs in run_groups(observations)
    ]
    means = np.stack(draws, axis=1)
    params = {}
    for name, fit in fits.items():
        refits = [fit_family(FAMILIES[name], x, y, sigma, [fit.params]) for y in means]
        failed = np.full(len(fit.params), np.nan)
        params[name] = np.array([fit.params, *(failed if r is None else r for r in refits)])
    return Ensemble(fits, params, calibration, float(x[-1]), anchor)


def quantiles(values: np.ndarray, level: float) -> tuple[float, float]:
    """Empirical (1-level)/2 and (1+level)/2 quantiles, not interpolated: inf stays inf, never NaN."""
    ordered = np.sort(values)
    index = [max(0, math.ceil(q * len(ordered)) - 1) for q in ((1 - level) / 2, (1 + level) / 2)]
    return float(ordered[index[0]]), float(ordered[index[1]])


@dataclass(frozen=True)
class Pooled:
    """Each family's answer on the original data, and every family x replicate answer (NaN
    dropped) with its weight: a family's weight shared among its replicates."""

    per_family: dict[str, float]
    values: np.ndarray
    weights: np.ndarray


def pool(
    params: dict[str, np.ndarray],
    answer: Callable[[Family, np.ndarray], np.ndarray],
    weights: dict[str, float],
) -> Pooled:
    answers = {name: answer(FAMILIES[name], rows) for name, rows in params.items()}
    values, shares = [], []
    for name, found in answers.items():
        kept = found[~np.isnan(found)]
        values.append(kept)
        shares.append(np.full(len(kept), weights.get(name, 0.0) / max(len(kept), 1)))
    return Pooled(
        {name: float(found[0]) for name, found in answers.items()},
        np.concatenate(values),
        np.concatenate(shares),
    )


def _estimate(pooled: Pooled, weights: dict[str, float], level: float, anchor: str | None) -> Estimate:
    """The point :func:`central` takes, interval from the weighted pool, widened if need be so that
    it holds the point."""
    point = central(pooled.per_family, weights, anchor)
    low, high = (
        weighted_quantile(pooled.values, pooled.weights, q) for q in ((1 - level) / 2, (1 + level) / 2)
    )
    return Estimate(point, min(low, point), max(high, point))


# How far past the largest measured slice an answer is called reliable: on the gallery of real
# curves (bench/results/gallery.md, coverage by reach) the calibrated 80% interval held on 42 of
# the 45 held-out slices within 10x the largest slice fitted, and on 8 of only 9 checks beyond:
# past 10x the answer is marked unreliable.
RELIABLE_MULTIPLE = 10.0


def _ceiling(fitted: Ensemble, level: float) -> Estimate | None:
    """Where the curve's point levels off (:meth:`Ensemble.central` of the saturating families'
    ceilings), its interval from all of theirs, widened as an answer at the reliable reach is
    (:meth:`Calibration.widen`): the bootstrap alone gave "88.1% to 89.8%" beside "80.1% to
    97.5%" for the accuracy at 320 images per class on the same curve."""
    saturating = {name: rows for name, rows in fitted.params.items() if FAMILIES[name].ceiling}
    if not saturating:
        return None
    weights = {name: fitted.weights.get(name, 0.0) for name in saturating}
    if not sum(weights.values()):
        weights = dict.fromkeys(saturating, 1.0)
    pooled = pool(saturating, lambda family, rows: family.ceiling(rows), weights)
    found = _estimate(pooled, weights, level, fitted.anchor)
    return fitted.calibration.widen(found, RELIABLE_MULTIPLE, level)


def _predict(fitted: Ensemble, n: float, level: float) -> Estimate:
    """The accuracy at ``n``: the bootstrap's interval, widened beyond the fitted counts by what
    the inner backtests show the curves miss (:meth:`Calibration.widen`)."""
    pooled = pool(fitted.params, lambda family, rows: evaluate(family, rows, n), fitted.weights)
    estimate = _estimate(pooled, fitted.weights, level, fitted.anchor)
    return fitted.calibration.widen(estimate, n / fitted.largest, level)


def check_fraction(value: float, what: str) -> None:
    """Raise ValueError unless 0 < value < 1."""
    if not 0 < value < 1:
        raise ValueError(f"{what} must be strictly between 0 and 1, got {value}")


def fit(
    observations: Iterable[Observation], n_boot: int = 200, seed: int = 0, n_holdout: int | None = None
) -> Ensemble | str:
    """The bootstrap ensemble of the observations (one fit serves every answer below), or the
    one-sentence reason they cannot be extrapolated."""
    return ensemble(observations, n_boot, np.random.default_rng(seed), n_holdout)


def accuracy_at(
    observations: Iterable[Observation],
    n: float,
    level: float = 0.8,
    n_boot: int = 200,
    seed: int = 0,
    n_holdout: int | None = None,
) -> Answer:
    """Holdout accuracy the fitted curves predict at ``n`` images per class, with a ``level`` interval.

    Raises:
        ValueError: ``n`` is not positive, ``level`` is not in (0, 1), or an observation is bad.
    """
    _check_question(n, level)  # before the seconds of fitting
    return answer_at(fit(observations, n_boot, seed, n_holdout), n, level)


def _check_question(n: float, level: float) -> None:
    check_fraction(level, "level")
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"images per class must be positive, got {n}")


def answer_at(fitted: Ensemble | str, n: float, level: float = 0.8) -> Answer:
    """:func:`accuracy_at` from an ensemble already fitted."""
    _check_question(n, level)
    if isinstance(fitted, str):
        return Answer(None, reason=fitted)
    per_family = {
        name: float(evaluate(FAMILIES[name], rows[:1], n)[0]) for name, rows in fitted.params.items()
    }
    return Answer(_predict(fitted, n, level), ceiling=_ceiling(fitted, level), per_family=per_family)


def band(fitted: Ensemble, ns: Iterable[float], level: float = 0.8) -> list[Estimate]:
    """The predicted accuracy with its interval at each of ``ns``: the curve and band to draw."""
    return [_predict(fitted, float(n), level) for n in ns]


def images_needed(
    observations: Iterable[Observation],
    target: float,
    level: float = 0.8,
    n_boot: int = 200,
    seed: int = 0,
    n_holdout: int | None = None,
) -> Answer:
    """Images per class needed to reach holdout accuracy ``target``, with a ``level`` interval.

    Beyond reach (no estimate, ``beyond_reach`` set, the ceiling in the reason) when more than
    (1-level)/2 of the pooled answers never reach the target, or most families on the original data
    do not. A target the measured points already reach still gets the fitted curves' answer and
    interval, which may lie below the largest measured count: the curves smooth out the seed noise.

    Raises:
        ValueError: ``target`` or ``level`` is not strictly between 0 and 1, or an observation is bad.
    """
    check_fraction(target, "target accuracy")
    return answer_needed(fit(observations, n_boot, seed, n_holdout), target, level)


def answer_needed(fitted: Ensemble | str, target: float, level: float = 0.8) -> Answer:
    """:func:`images_needed` from an ensemble already fitted."""
    check_fraction(target, "target accuracy")
    check_fraction(level, "level")
    if isinstance(fitted, str):
        return Answer(None, reason=fitted)
    pooled = pool(fitted.params, lambda family, rows: inverse(family, rows, target), fitted.weights)
    per_family, ceiling = pooled.per_family, _ceiling(fitted, level)
    never = float(np.sum(pooled.weights[np.isinf(pooled.values)]) / np.sum(pooled.weights))
    estimate = _estimate(pooled, fitted.weights, level, fitted.anchor)
    if never > (1 - level) / 2 or math.isinf(estimate.estimate):
        reason = _beyond_reason(target, never, ceiling, level)
    else:
        # the calibrated band's edges: where its upper edge reaches the target, where its lower edge does
        start = min(max(estimate.low, N_RANGE[0]), fitted.largest)
        soonest, latest = (_first_reaching(fitted, target, level, edge, start) for edge in ("high", "low"))
        if not math.isinf(latest):
            found = Estimate(estimate.estimate, min(estimate.low, soonest), max(estimate.high, latest))
            return Answer(found, ceiling=ceiling, per_family=per_family, point=estimate.estimate)
        reason = _overshoot_reason(fitted, target, level) or _noise_reason(fitted, target, ceiling, level)
    reason = _point_first(estimate.estimate, fitted.largest, target, reason)
    return Answer(None, True, reason, ceiling, per_family, estimate.estimate)


def reached_past(point: float | None, largest: float) -> bool:
    """Whether the curve's ``point`` (images per class for a target) lies past the ``largest``
    count measured: where there is no estimate, the reason and the story then lead with it, since
    beside the accuracy the page gives at any count "no estimate" for 89.5% read as a
    contradiction of "89.6% at 19,200 images per class". Not within the measured counts, where
    the measured points speak ("reaches 90% at about 180" beside 88.3% measured at 240)."""
    return point is not None and math.isfinite(point) and point > largest


def _point_first(point: float, largest: float, target: float, reason: str) -> str:
    """``reason`` why there is no estimate, led by where the curve's point reaches ``target`` when
    it does past the ``largest`` count fitted (:func:`reached_past`)."""
    if not reached_past(point, largest):
        return reason
    reached = f"The fitted curve reaches {share(target)} at about {roughly(point)} images per class"
    return f"{reached}, but {continued(reason)}"


SEARCH_POINTS = 120  # log-spaced counts searched beyond the fitted ones for a band edge's crossing


def _first_reaching(fitted: Ensemble, target: float, level: float, edge: str, start: float) -> float:
    """The smallest count from ``start`` on at which the band's ``edge`` reaches ``target`` (inf:
    never within ``N_RANGE``); ``start`` when it is there already. Searched on a log grid, then by
    bisection within the step that crosses. ``start`` is at most the largest fitted count: a search
    that began there made every interval's top at least the largest slice measured ("about 5,
    80% interval 4 to 96" where 8 per class already measured above the target)."""

    def reaches(n: float) -> bool:
        return getattr(_predict(fitted, n, level), edge) >= target

    grid = np.geomspace(start, N_RANGE[1], SEARCH_POINTS)
    crossing = next((i for i, n in enumerate(grid) if reaches(float(n))), None)
    if crossing is None:
        return math.inf
    if crossing == 0:
        return float(grid[0])
    low, high = math.log(grid[crossing - 1]), math.log(grid[crossing])
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (low, middle) if reaches(math.exp(middle)) else (middle, high)
    return math.exp(high)


def _overshoot_reason(fitted: Ensemble, target: float, level: float) -> str | None:
    """Why the interval has no upper end when the calibration's lower arm is what keeps the band
    below the target; None when the inner backtests saw no overshoot worth a tenth of a point per
    doubling (the bootstrap alone then keeps it there, which :func:`_beyond_reason` says)."""
    if not fitted.calibration.calibrated:
        return None
    overshoot = -100 * fitted.calibration.arms(level)[0] * math.log(2)
    if overshoot < 0.1:
        return None
    return (
        f"The {level:.0%} interval has no upper end: fitted on this data's own smaller slices, the "
        f"curves overshot the larger ones by up to {overshoot:.1f} accuracy points for "
        f"each doubling of the images, and allowing for that, {share(target)} may never be reached."
    )


def _noise_reason(fitted: Ensemble, target: float, ceiling: Estimate | None, level: float) -> str:
    """Why the interval has no upper end when most curves reach the target but the band's lower
    edge, which carries the noise a measured slice would have, never does: "5% of the bootstrap
    curves never reach 90%" was said for it, which cannot open an 80% interval."""
    spread = 100 * NormalDist().inv_cdf((1 + level) / 2) * math.sqrt(fitted.calibration.noise)
    limit = f" ({_ceiling_words(ceiling, level)})" if ceiling else ""
    return (
        f"The {level:.0%} interval has no upper end: a slice measured there would carry the noise of its "
        f"holdout images and seeds (about ±{spread:.1f} points), and allowing for it the interval's lower "
        f"end stays under {share(target)} {WITHIN}{limit}."
    )


WITHIN = "however many images per class are labelled"  # the search stops at N_RANGE[1]: a billion


def _ceiling_words(ceiling: Estimate, level: float) -> str:
    return f"ceiling {ceiling.estimate:.1%}, {level:.0%} interval {ceiling.low:.1%} to {ceiling.high:.1%}"


def _beyond_reason(target: float, never: float, ceiling: Estimate | None, level: float) -> str:
    if ceiling is None:
        return f"{share(target)} is not reached by {never:.0%} of the fitted curves, {WITHIN}."
    limit = _ceiling_words(ceiling, level)
    if target >= ceiling.estimate:
        # a target inside the ceiling's interval is not known to be out of reach: say so
        open_question = ", though within the ceiling's interval: these slices cannot rule it out"
        return (
            f"{share(target)} is above what the fitted curves reach ({limit})"
            f"{open_question if target <= ceiling.high else ''}."
        )
    return (
        f"The {level:.0%} interval has no upper end: {never:.0%} of the bootstrap curves never reach "
        f"{share(target)}, {WITHIN} ({limit})."
    )


def backtest(
    observations: Iterable[Observation],
    fit_up_to: float,
    level: float = 0.8,
    n_boot: int = 200,
    seed: int = 0,
    n_holdout: int | None = None,
    families: tuple[str, ...] | None = None,
    calibrated: bool = True,
    anchor: str | None = ANCHOR,
) -> Backtest:
    """Fit on the counts up to ``fit_up_to`` and check the predictions against the larger measured ones.

    Tells how far the curves can be trusted on this dataset: a row is inside when the measured mean
    falls in its predicted interval. The fit is the whole procedure, inner backtests on the counts
    up to ``fit_up_to`` included (``families``, ``calibrated`` and ``anchor``: see :func:`ensemble`).

    Raises:
        ValueError: ``level`` is not in (0, 1), or an observation is bad.
    """
    check_fraction(level, "level")
    observations = list(observations)
    held = [p for p in curve_points(observations, n_holdout) if p.n > fit_up_to]
    if not held:
        return Backtest(
            fit_up_to, reason=f"No measured count above {per_class(fit_up_to)} images per class to check."
        )
    train = [obs for obs in observations if obs.n <= fit_up_to]
    fitted = ensemble(train, n_boot, np.random.default_rng(seed), n_holdout, families, calibrated, anchor)
    if isinstance(fitted, str):
        return Backtest(
            fit_up_to,
            reason=f"On the slices up to {per_class(fit_up_to)} images per class: {continued(fitted)}",
        )
    rows = []
    for point in held:
        band = _predict(fitted, point.n, level)
        inside = band.low <= point.mean <= band.high
        rows.append(BacktestRow(point.n, point.mean, band.estimate, band.low, band.high, inside))
    last = held[-1].mean
    needed = {name: float(inverse(FAMILIES[name], p[:1], last)[0]) for name, p in fitted.params.items()}
    need = fitted.central(needed)
    return Backtest(
        fit_up_to,
        tuple(rows),
        float(np.mean([abs(row.predicted - row.measured) for row in rows])),
        float(np.mean([row.inside for row in rows])),
        float(need / held[-1].n) if math.isfinite(need) else None,
        calibrated=fitted.calibration.calibrated,
    )
