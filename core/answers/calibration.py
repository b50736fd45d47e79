"""Are a run's probabilities probabilities? Expected calibration error (ECE) with an interval, the
reliability diagram, temperature scaling, and a confidence threshold chosen for a target accuracy.

Top-label ECE: bin the images by the probability of their predicted class (their confidence);
ECE is the count-weighted mean of |accuracy - mean confidence| over the bins. Bins are
``[low, high)``, an image whose confidence equals an edge goes to the bin above it, and the top
bin is closed, so a confidence of exactly 1.0 (common after a softmax in float32) lands in it.

Why the binning is done here and not by torchmetrics (a test oracle only): its
``multiclass_calibration_error`` (1.9.0, issue #3510) puts a confidence of exactly 1.0 into a
hidden extra bin. One image at 1.0 (wrong) and one at 0.96 (right) share the top of 15 bins, so
ECE is |0.98 - 0.5| = 0.48; torchmetrics scores them as two bins, 0.5 * 1.0 + 0.5 * 0.04 = 0.52.
The diagram also needs per-bin counts and equal-mass bins, which it does not give. Where no
confidence is 1.0 the equal-width ECE here equals torchmetrics' ``norm="l1"`` value (the tests
check both facts).

Temperature scaling (Guo et al. 2017) divides the logits by one T > 0 fitted by NLL on the run's
fixed validation set, never the holdout it is then measured on; it cannot change the argmax. It
corrects either direction: T > 1 softens an over-confident model, T < 1 sharpens an under-confident
one, as recent models often are, so nothing here assumes which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax

from core.base.errors import UserError, check_choice, check_share
from core.base.intervals import Estimate, json_float, wilson
from core.store.evaluate import argmax_accuracy
from core.store.record import Predictions

SCHEMES = ("width", "mass")
EPS = 1e-12  # probabilities are clipped to this before a log: a stored 0.0 would make NLL infinite
T_RANGE = (1e-2, 1e2)  # a temperature outside this is a broken model, not a calibration


@dataclass(frozen=True)
class Bin:
    """One bar of a reliability diagram: its confidence edges, the mean confidence and the
    accuracy of its images, and how many there are. Empty bins are never returned."""

    low: float
    high: float
    confidence: float
    accuracy: float
    count: int

    def to_dict(self) -> dict:
        return {
            "confidence": self.confidence,
            "accuracy": self.accuracy,
            "count": self.count,
            "low": self.low,
            "high": self.high,
        }


def top_label(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) per image: the top probability, and whether its class is the label."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs.max(1), probs.argmax(1) == np.asarray(labels)


def _check(n_bins: int, scheme: str, level: float = 0.95) -> None:
    check_choice("binning scheme", scheme, SCHEMES)
    if n_bins < 1:
        raise UserError(f"--bins must be at least 1, not {n_bins}")
    check_share("--level", level)


def _edges(confidence: np.ndarray, n_bins: int, scheme: str) -> np.ndarray:
    """The n_bins + 1 bin edges, from 0 to 1.

    Equal mass: the sorted confidences are cut into n_bins runs of (N * k) // n_bins images and
    each inner edge is the confidence of the first image of a run. Binning then applies the same
    rule as for equal width (an edge value goes to the bin above), so identical confidences always
    share a bin: ties at a cut all move up, leaving that bin larger and the one below smaller
    (or empty). Without ties the counts differ by at most one.
    """
    if scheme == "width":
        return np.linspace(0.0, 1.0, n_bins + 1)
    inner = np.sort(confidence)[(np.arange(1, n_bins) * len(confidence)) // n_bins]
    return np.concatenate([[0.0], inner, [1.0]])


def _sums(confidence: np.ndarray, correct: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, ...]:
    """(count, sum of confidence, sum of correct) per bin."""
    n_bins = len(edges) - 1
    index = np.searchsorted(edges[1:-1], confidence, side="right")  # 1.0 -> the top bin, not past it
    return (
        np.bincount(index, minlength=n_bins),
        np.bincount(index, weights=confidence, minlength=n_bins),
        np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins),
    )


def _ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int, scheme: str) -> float:
    if not len(confidence):
        return math.nan
    _, conf_sum, right_sum = _sums(confidence, correct, _edges(confidence, n_bins, scheme))
    return float(np.abs(conf_sum - right_sum).sum() / len(confidence))  # sum_b n_b/N |conf_b - acc_b|


def bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, scheme: str = "width") -> list[Bin]:
    """The non-empty bins of the reliability diagram (``scheme``: "width" or "mass")."""
    _check(n_bins, scheme)
    confidence, correct = top_label(probs, labels)
    edges = _edges(confidence, n_bins, scheme)
    counts, conf_sum, right_sum = _sums(confidence, correct, edges)
    return [
        Bin(float(edges[k]), float(edges[k + 1]), float(conf_sum[k] / n), float(right_sum[k] / n), int(n))
        for k, n in enumerate(counts)
        if n
    ]


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15, scheme: str = "width") -> float:
    """Top-label expected calibration error; NaN for no images."""
    _check(n_bins, scheme)
    return _ece(*top_label(probs, labels), n_bins, scheme)


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    low, high = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def ece_interval(
    probs: np.ndarray,
    labels: np.ndarray,
    n_bins: int = 15,
    scheme: str = "width",
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Estimate:
    """ECE with a percentile bootstrap interval over images (Kumar et al. 2019), reproducible by seed.

    Equal-mass edges are recomputed in each resample. A resample repeats images, which binned ECE
    reads as extra miscalibration, so for a well-calibrated model the whole bootstrap distribution
    can sit above the estimate; the interval is then stretched to reach the estimate rather than
    exclude the number it is reported with.
    """
    _check(n_bins, scheme, level)
    confidence, correct = top_label(probs, labels)
    estimate = _ece(confidence, correct, n_bins, scheme)
    if not len(confidence):
        return Estimate(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(confidence), len(confidence)) for _ in range(n_boot)]
    low, high = _percentiles([_ece(confidence[i], correct[i], n_bins, scheme) for i in draws], level)
    return Estimate(estimate, min(low, estimate), max(high, estimate))


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels (probabilities clipped at 1e-12)."""
    labels = np.asarray(labels)
    return float(-_log(probs)[np.arange(len(labels)), labels].mean()) if len(labels) else math.nan


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / T). Log-probabilities serve as logits because softmax ignores a shift
    per image; dividing by T > 0 keeps their order, so the argmax is unchanged."""
    return softmax(_log(probs) / temperature, axis=1)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 (within 0.01..100) minimising the NLL of ``scale(probs, T)``.

    NLL is convex in 1/T, so a bounded one-dimensional search over log(1/T) finds its minimum.

    Raises:
        UserError: there are no images to fit on.
    """
    labels = np.asarray(labels)
    if not len(labels):
        raise UserError("no validation images to fit a temperature on")
    logits = _log(probs)
    true = logits[np.arange(len(labels)), labels]

    def loss(log_beta: float) -> float:
        beta = math.exp(log_beta)
        return float(np.mean(logsumexp(beta * logits, axis=1) - beta * true))

    bounds = (-math.log(T_RANGE[1]), -math.log(T_RANGE[0]))
    found = minimize_scalar(loss, bounds=bounds, method="bounded", options={"xatol": 1e-6})
    return float(math.exp(-found.x))


@dataclass(frozen=True)
class Calibration:
    """A run's calibration on its holdout, before and after a temperature fitted on validation."""

    ece: Estimate
    ece_scaled: Estimate
    temperature: float
    accuracy: float  # holdout argmax accuracy; scaling cannot change it, both are reported as a check
    accuracy_scaled: float
    bins: tuple[Bin, ...]
    bins_scaled: tuple[Bin, ...]
    scheme: str
    n_bins: int
    n: int  # holdout images
    direction: str  # before scaling: "over-confident", "under-confident", "calibrated within the interval"
    val_nll: float
    val_nll_scaled: float
    n_val: int  # validation images the temperature was fitted on

    def scaling_words(self) -> str:
        """What rescaling did, in one sentence for a person. On a small validation set the fitted
        temperature follows those few images' quirks and can leave the holdout worse calibrated
        than before: that is said, with the set's size, so that a rise is not read as a bug."""
        before, after = self.ece.estimate, self.ece_scaled.estimate
        if f"{after:.1%}" == f"{before:.1%}":
            return (
                f"Rescaling the probabilities, fitted on {self.n_val:,} validation images, leaves the "
                f"calibration error where it was ({before:.1%})."
            )
        if after > before:
            return (
                f"Rescaling the probabilities made them less honest here ({after:.1%} against "
                f"{before:.1%} as trained): it was fitted on only {self.n_val:,} validation images, "
                "too few to learn a correction that holds on new images. Read the as-trained "
                "probabilities; a larger validation set (the split controls on the Data page) would "
                "give a correction to trust."
            )
        return (
            f"Rescaling the probabilities, fitted on {self.n_val:,} validation images, brings the "
            f"calibration error from {before:.1%} to {after:.1%}."
        )

    def to_dict(self) -> dict:
        return {
            "ece": self.ece.to_dict(),
            "ece_scaled": self.ece_scaled.to_dict(),
            "temperature": json_float(self.temperature),
            "accuracy": json_float(self.accuracy),
            "accuracy_scaled": json_float(self.accuracy_scaled),
            "bins": [b.to_dict() for b in self.bins],
            "bins_scaled": [b.to_dict() for b in self.bins_scaled],
            "scheme": self.scheme,
            "n_bins": self.n_bins,
            "n": self.n,
            "direction": self.direction,
            "val_nll": json_float(self.val_nll),
            "val_nll_scaled": json_float(self.val_nll_scaled),
            "n_val": self.n_val,
        }


def _direction(
    probs: np.ndarray,
    labels: np.ndarray,
    measured: Estimate,
    n_bins: int,
    scheme: str,
    level: float,
    n_boot: int,
    seed: int,
) -> str:
    """Which way the model errs, if it measurably does.

    Binned ECE is above 0 even for a perfectly calibrated model, so "its interval excludes 0" would
    always say miscalibrated. The reference is instead the ECE a calibrated model with the same
    confidences scores on as many images (labels drawn right with probability equal to the
    confidence); when the measured interval overlaps that range, no direction is claimed. Otherwise
    the sign of mean(confidence - accuracy) gives it.
    """
    confidence, correct = top_label(probs, labels)
    rng = np.random.default_rng(seed + 1)
    null = [_ece(confidence, rng.random(len(confidence)) < confidence, n_bins, scheme) for _ in range(n_boot)]
    if measured.overlaps(Estimate(math.nan, *_percentiles(null, level))):
        return "calibrated within the interval"
    return "over-confident" if np.mean(confidence - correct) > 0 else "under-confident"


def calibrate(
    validation: Predictions,
    holdout: Predictions,
    n_bins: int = 15,
    scheme: str = "width",
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Calibration:
    """Fit T on ``validation`` only; measure ECE and the diagram on ``holdout`` before and after.

    Raises:
        UserError: a bad scheme, bin count or level, or an empty validation or holdout set.
    """
    _check(n_bins, scheme, level)
    if not len(holdout.labels):
        raise UserError("the holdout set is empty; there is nothing to measure calibration on")
    temperature = fit_temperature(validation.probs, validation.labels)
    scaled = scale(holdout.probs, temperature)
    before = ece_interval(holdout.probs, holdout.labels, n_bins, scheme, level, n_boot, seed)
    return Calibration(
        ece=before,
        ece_scaled=ece_interval(scaled, holdout.labels, n_bins, scheme, level, n_boot, seed),
        temperature=temperature,
        accuracy=argmax_accuracy(holdout.probs, holdout.labels),
        accuracy_scaled=argmax_accuracy(scaled, holdout.labels),
        bins=tuple(bins(holdout.probs, holdout.labels, n_bins, scheme)),
        bins_scaled=tuple(bins(scaled, holdout.labels, n_bins, scheme)),
        scheme=scheme,
        n_bins=n_bins,
        n=len(holdout.labels),
        direction=_direction(holdout.probs, holdout.labels, before, n_bins, scheme, level, n_boot, seed),
        val_nll=nll(validation.probs, validation.labels),
        val_nll_scaled=nll(scale(validation.probs, temperature), validation.labels),
        n_val=len(validation.labels),
    )


@dataclass(frozen=True)
class ThresholdPlan:
    """A confidence threshold chosen on validation for a target accuracy, and what it gives on the
    holdout: images at or above it are automated, the rest go to a human."""

    target: float
    threshold: float | None  # None: no threshold reaches the target on validation (see reason)
    kept_accuracy: Estimate | None  # holdout accuracy of the kept images (Wilson)
    automated_share: Estimate | None  # share of holdout images kept (Wilson)
    human_share: Estimate | None  # 1 - automated, interval mirrored
    val_kept_accuracy: float | None
    val_automated_share: float | None
    reason: str | None

    def to_dict(self) -> dict:
        def estimate(value: Estimate | None) -> dict | None:
            return value.to_dict() if value is not None else None

        return {
            "target": self.target,
            "threshold": self.threshold,
            "kept_accuracy": estimate(self.kept_accuracy),
            "automated_share": estimate(self.automated_share),
            "human_share": estimate(self.human_share),
            "reason": self.reason,
            "val_kept_accuracy": json_float(self.val_kept_accuracy),
            "val_automated_share": json_float(self.val_automated_share),
        }

    def holdout_words(self, n_holdout: int) -> str:
        """What the threshold does on the holdout, in one sentence with its intervals, saying so
        where the holdout's accuracy falls below the target (the threshold was chosen on the
        validation images): a room must not read 89% as the 95% asked for."""
        k, a, h = self.kept_accuracy, self.automated_share, self.human_share
        if self.threshold is None or k is None or a is None or h is None:
            return f"At {self.target:.0%} accuracy, nothing can be left to the model alone: {self.reason}."
        right = against(k.estimate, self.target)
        return (
            f"On the {n_holdout:,} holdout images, the model would decide {a.estimate:.0%} of them alone "
            f"(95% interval {a.low:.0%} to {a.high:.0%}) and be right on {right} of those "
            f"(95% interval {k.low:.0%} to {k.high:.0%}){short_of(k, self.target)}; a person would check "
            f"the other {h.estimate:.0%}."
        )


def against(accuracy: float, target: float) -> str:
    """An accuracy in percent beside a target, to one decimal where whole percents would print
    the two alike: "right on 92% of those, below the 92% asked for" was 91.7% against 92%."""
    whole = f"{accuracy:.0%}"
    return f"{accuracy:.1%}" if whole == f"{target:.0%}" and accuracy != target else whole


def gap(accuracy: float, target: float) -> str:
    """How far an accuracy falls from a target, in points: to one decimal under half a point
    ("-0 points vs 92%" was printed for 91.7%)."""
    points = 100 * (accuracy - target)
    return (
        f"{points:+.0f} points vs {target:.0%}"
        if abs(points) >= 0.5
        else f"{points:+.1f} points vs {target:.0%}"
    )


def short_of(accuracy: Estimate, target: float) -> str:
    """The words after an accuracy measured on the holdout when it falls below ``target``: below
    even at the top of its interval, or below but within it; nothing when it meets the target."""
    if accuracy.high < target:
        return f", below the {target:.0%} asked for even at the top of its 95% interval"
    if accuracy.estimate < target:
        return f", below the {target:.0%} asked for, though its 95% interval reaches it"
    return ""


def threshold_for(
    validation: Predictions, holdout: Predictions, target: float, temperature: float = 1.0, min_kept: int = 1
) -> ThresholdPlan:
    """Choose a threshold on validation, report it on the holdout.

    Rule: among the distinct validation confidences t, keep the images whose top probability
    is >= t; take the lowest t whose kept accuracy is >= ``target`` with at least ``min_kept``
    images kept, which automates as many images as the target allows. Kept accuracy need not fall
    steadily with t, so a higher t can miss the target where the chosen one meets it. Choosing on
    validation and measuring on the holdout keeps the reported numbers free of the choice's
    optimism; the Wilson intervals say how far they can be trusted. ``temperature`` (if not 1)
    scales both sets first, and the threshold is then on the scaled confidences.

    Raises:
        UserError: ``target`` is not strictly between 0 and 1.
    """
    check_share("--target", target)
    val_probs, hold_probs = validation.probs, holdout.probs
    if temperature != 1.0:
        val_probs, hold_probs = scale(val_probs, temperature), scale(hold_probs, temperature)
    confidence, correct = top_label(val_probs, validation.labels)
    if not len(confidence):
        return ThresholdPlan(target, None, None, None, None, None, None, "the validation set is empty")
    order = np.argsort(-confidence, kind="stable")
    confidence, kept_right = confidence[order], np.cumsum(correct[order])
    last = np.flatnonzero(np.append(confidence[1:] != confidence[:-1], True))  # last image of each value
    kept = last + 1
    accuracy = kept_right[last] / kept
    ok = np.flatnonzero((accuracy >= target) & (kept >= min_kept))
    if not len(ok):
        best = f"; the best is {accuracy[kept >= min_kept].max():.1%}" if (kept >= min_kept).any() else ""
        reason = (
            f"no threshold reaches {target:.1%} accuracy on the {len(confidence)} validation images "
            f"with at least {min_kept} kept{best}"
        )
        return ThresholdPlan(target, None, None, None, None, None, None, reason)
    choice = ok[-1]  # confidences fall along the order: the last that passes is the lowest threshold
    threshold = float(confidence[last[choice]])
    hold_conf, hold_correct = top_label(hold_probs, holdout.labels)
    chosen = hold_conf >= threshold
    automated = wilson(int(chosen.sum()), len(chosen))
    return ThresholdPlan(
        target=target,
        threshold=threshold,
        kept_accuracy=wilson(int(hold_correct[chosen].sum()), int(chosen.sum())),
        automated_share=automated,
        human_share=Estimate(1 - automated.estimate, 1 - automated.high, 1 - automated.low),
        val_kept_accuracy=float(accuracy[choice]),
        val_automated_share=float(kept[choice] / len(confidence)),
        reason=None if chosen.any() else "no holdout image reaches the threshold; nothing would be automated",
    )
