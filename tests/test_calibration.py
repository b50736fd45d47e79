"""Calibration on probabilities whose answers are computed by hand, checked against torchmetrics,
and temperature scaling and thresholds on synthetic models of known miscalibration."""

import json

import numpy as np
import pytest
import torch
from scipy.special import softmax
from torchmetrics.functional.classification import multiclass_calibration_error

from core.answers.calibration import (
    Bin,
    Calibration,
    against,
    bins,
    calibrate,
    ece,
    ece_interval,
    fit_temperature,
    gap,
    nll,
    scale,
    threshold_for,
    top_label,
)
from core.base.errors import UserError
from core.base.intervals import Estimate, wilson
from core.store.record import Predictions

# Six images over four classes. With 5 equal-width bins (edges 0, .2, .4, .6, .8, 1):
PROBS = np.array(
    [
        [0.30, 0.25, 0.25, 0.20],  # label 0: conf .30 right -> [.2, .4)
        [0.50, 0.20, 0.20, 0.10],  # label 1: conf .50 wrong -> [.4, .6)
        [0.70, 0.10, 0.10, 0.10],  # label 0: conf .70 right -> [.6, .8)
        [0.10, 0.90, 0.00, 0.00],  # label 1: conf .90 right -> [.8, 1]
        [0.00, 0.00, 1.00, 0.00],  # label 3: conf 1.0 wrong -> [.8, 1], the top bin, not past it
        [0.85, 0.05, 0.05, 0.05],  # label 0: conf .85 right -> [.8, 1]
    ]
)
LABELS = np.array([0, 1, 0, 1, 3, 0])
# Top bin: mean conf (.9 + 1 + .85) / 3 = .91667, accuracy 2/3.
# ECE = (|.3 - 1| + |.5 - 0| + |.7 - 1| + 3 |.91667 - .66667|) / 6 = (.7 + .5 + .3 + .75) / 6 = .375
HAND_ECE = 0.375


def predictions(probs: np.ndarray, labels: np.ndarray) -> Predictions:
    n, c = probs.shape
    return Predictions(
        classes=tuple(f"c{k}" for k in range(c)),
        image_index=np.arange(n),
        paths=tuple(f"{k}.png" for k in range(n)),
        labels=np.asarray(labels),
        probs=probs,
    )


def binary(confidences: list[float], right: list[bool]) -> Predictions:
    """Two-class predictions with these top probabilities (class 0), right where said."""
    conf = np.array(confidences)
    return predictions(np.stack([conf, 1 - conf], 1), np.where(right, 0, 1))


def synthetic(n: int, sharpness: float, seed: int, classes: int = 5) -> Predictions:
    """Labels drawn from softmax(z); the model reports softmax(sharpness * z): over-confident
    above 1, under-confident below, calibrated at 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, classes))
    truth = softmax(z, axis=1)
    labels = (rng.random((n, 1)) > truth.cumsum(1)).sum(1)
    return predictions(softmax(sharpness * z, axis=1), labels)


def torchmetrics_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    return float(
        multiclass_calibration_error(
            torch.tensor(probs), torch.tensor(labels), num_classes=probs.shape[1], n_bins=n_bins, norm="l1"
        )
    )


def test_top_label():
    confidence, correct = top_label(PROBS, LABELS)
    assert confidence.tolist() == [0.3, 0.5, 0.7, 0.9, 1.0, 0.85]
    assert correct.tolist() == [True, False, True, True, False, True]


def test_equal_width_bins_and_ece_by_hand():
    got = bins(PROBS, LABELS, n_bins=5)
    assert [b.count for b in got] == [1, 1, 1, 3]  # [0, .2) is empty and not returned
    assert [b.accuracy for b in got] == pytest.approx([1, 0, 1, 2 / 3])
    assert [b.confidence for b in got] == pytest.approx([0.3, 0.5, 0.7, 2.75 / 3])
    assert (got[0].low, got[0].high) == pytest.approx((0.2, 0.4))
    assert (got[-1].low, got[-1].high) == pytest.approx((0.8, 1.0))  # holds the 1.0
    assert ece(PROBS, LABELS, n_bins=5) == pytest.approx(HAND_ECE)


def test_torchmetrics_puts_a_confidence_of_one_in_a_hidden_bin():
    # One image at 1.0 (wrong), one at .96 (right): both in the top of 15 bins, ECE |.98 - .5| = .48.
    probs, labels = np.array([[1.0, 0.0], [0.96, 0.04]]), np.array([1, 0])
    assert ece(probs, labels) == pytest.approx(0.48)
    # torchmetrics 1.9 (issue #3510) scores them as two bins: .5 * 1 + .5 * .04 = .52. If this
    # starts failing, torchmetrics was fixed and could compute the equal-width ECE itself.
    assert torchmetrics_ece(probs, labels, 15) == pytest.approx(0.52, abs=1e-6)


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_equal_width_ece_matches_torchmetrics_without_ones(n_bins):
    rng = np.random.default_rng(n_bins)
    probs = softmax(rng.normal(0, 2, (2000, 10)), axis=1)
    labels = rng.integers(0, 10, 2000)
    assert probs.max() < 1.0
    assert ece(probs, labels, n_bins) == pytest.approx(torchmetrics_ece(probs, labels, n_bins), abs=1e-6)


def test_equal_mass_bins_by_hand():
    # Sorted confidences .3 .5 | .7 .85 | .9 1.0 in 3 bins of two: accuracy 1/2, 1, 1/2.
    got = bins(PROBS, LABELS, n_bins=3, scheme="mass")
    assert [b.count for b in got] == [2, 2, 2]
    assert [b.confidence for b in got] == pytest.approx([0.4, 0.775, 0.95])
    assert [b.accuracy for b in got] == pytest.approx([0.5, 1.0, 0.5])
    assert [edge for b in got for edge in (b.low, b.high)] == pytest.approx([0, 0.7, 0.7, 0.9, 0.9, 1])
    # ECE = (2 / 6) (|.4 - .5| + |.775 - 1| + |.95 - .5|) = .775 / 3
    assert ece(PROBS, LABELS, n_bins=3, scheme="mass") == pytest.approx(0.775 / 3)


def test_equal_mass_bins_are_equal_and_ties_share_a_bin():
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(0, 2, (300, 4)), axis=1)
    labels = rng.integers(0, 4, 300)
    assert [b.count for b in bins(probs, labels, n_bins=10, scheme="mass")] == [30] * 10
    # .5 | .6 .6 | .6 .8 | .9: the cut falls inside the three .6s, which all move up together.
    tied = binary([0.5, 0.6, 0.6, 0.6, 0.8, 0.9], [True] * 6)
    got = bins(tied.probs, tied.labels, n_bins=3, scheme="mass")
    assert [b.count for b in got] == [1, 3, 2]
    assert got[1].confidence == pytest.approx(0.6)


def test_fewer_images_than_bins_leaves_no_empty_bin():
    got = bins(PROBS[:2], LABELS[:2], n_bins=15, scheme="mass")
    assert sum(b.count for b in got) == 2
    assert all(isinstance(b, Bin) and b.count > 0 for b in got)


def test_bad_scheme_and_bins_are_user_errors():
    with pytest.raises(UserError, match="binning scheme 'quantile'"):
        ece(PROBS, LABELS, scheme="quantile")
    with pytest.raises(UserError, match="not 0"):
        bins(PROBS, LABELS, n_bins=0)


@pytest.mark.parametrize("sharpness, over", [(3.0, True), (1 / 3, False)])
def test_temperature_scaling_either_direction(sharpness, over):
    val, fresh = synthetic(3000, sharpness, seed=1), synthetic(3000, sharpness, seed=2)
    t = fit_temperature(val.probs, val.labels)
    assert (t > 1) if over else (t < 1)
    assert t == pytest.approx(sharpness, rel=0.15)  # z * s / T recovers z
    assert nll(scale(val.probs, t), val.labels) < nll(val.probs, val.labels)
    for data in (val, fresh):
        assert (scale(data.probs, t).argmax(1) == data.probs.argmax(1)).all()
    assert ece(scale(fresh.probs, t), fresh.labels) < ece(fresh.probs, fresh.labels) / 2


def test_temperature_one_leaves_probabilities_alone():
    np.testing.assert_allclose(scale(PROBS, 1.0), PROBS, atol=1e-9)


def test_ece_interval():
    small, large = synthetic(200, 2.0, seed=3), synthetic(5000, 2.0, seed=4)
    a = ece_interval(small.probs, small.labels, n_boot=300)
    assert a.low <= a.estimate <= a.high
    assert a.estimate == ece(small.probs, small.labels)
    assert a == ece_interval(small.probs, small.labels, n_boot=300)  # same seed, same interval
    b = ece_interval(large.probs, large.labels, n_boot=300)
    assert b.low <= b.estimate <= b.high
    assert b.high - b.low < (a.high - a.low) / 2


@pytest.mark.parametrize(
    "sharpness, direction",
    [(3.0, "over-confident"), (1 / 3, "under-confident"), (1.0, "calibrated within the interval")],
)
def test_calibrate(sharpness, direction):
    val, hold = synthetic(2000, sharpness, seed=5), synthetic(2000, sharpness, seed=6)
    result = calibrate(val, hold, n_boot=200)
    assert result.direction == direction
    assert result.accuracy == result.accuracy_scaled == np.mean(hold.probs.argmax(1) == hold.labels)
    assert result.val_nll_scaled <= result.val_nll
    assert result.n == 2000 and sum(b.count for b in result.bins) == 2000
    if sharpness != 1.0:
        assert result.ece_scaled.estimate < result.ece.estimate


def test_temperature_is_fitted_on_validation_only():
    val, hold = synthetic(500, 3.0, seed=7), synthetic(500, 3.0, seed=8)
    other = predictions(hold.probs, np.zeros_like(hold.labels))
    assert calibrate(val, hold, n_boot=10).temperature == calibrate(val, other, n_boot=10).temperature


def test_calibration_json_has_the_contract_keys():
    data = synthetic(300, 2.0, seed=9)
    out = json.loads(json.dumps(calibrate(data, data, n_boot=50).to_dict(), allow_nan=False))
    assert set(out) == {
        "ece", "ece_scaled", "temperature", "accuracy", "accuracy_scaled", "bins", "bins_scaled",
        "scheme", "n_bins", "n", "direction", "val_nll", "val_nll_scaled", "n_val",
    }  # fmt: skip
    assert set(out["ece"]) == set(out["ece_scaled"]) == {"estimate", "low", "high"}
    assert set(out["bins"][0]) == {"confidence", "accuracy", "count", "low", "high"}


# Validation, by falling confidence: kept accuracy at t = .95: 1/1, .9: 2/2, .8: 3/3, .7: 3/4,
# .6: 4/5, .55: 4/6.
VAL = binary([0.95, 0.9, 0.8, 0.7, 0.6, 0.55], [True, True, True, False, True, False])
# Holdout: at t = .8 three of five are kept (.99, .85, .8), two of them right.
HOLD = binary([0.99, 0.85, 0.8, 0.75, 0.5], [True, True, False, True, True])


def test_threshold_by_hand():
    plan = threshold_for(VAL, HOLD, target=0.9)
    assert plan.threshold == 0.8  # the lowest t with kept accuracy >= .9 on validation
    assert (plan.val_kept_accuracy, plan.val_automated_share) == (1.0, 0.5)
    assert plan.kept_accuracy == wilson(2, 3)
    assert plan.automated_share == wilson(3, 5)
    assert plan.human_share.estimate == pytest.approx(0.4)
    assert plan.human_share.low == pytest.approx(1 - wilson(3, 5).high)
    assert plan.human_share.high == pytest.approx(1 - wilson(3, 5).low)
    assert plan.reason is None
    # .7 misses .8 (3/4) yet .6 meets it (4/5): the lowest passing threshold automates most
    assert threshold_for(VAL, HOLD, target=0.8).threshold == 0.6


def test_threshold_is_chosen_on_validation_only():
    rng = np.random.default_rng(0)
    other = binary(rng.uniform(0.5, 1, 5).tolist(), [False] * 5)
    a, b = threshold_for(VAL, HOLD, target=0.9), threshold_for(VAL, other, target=0.9)
    assert (a.threshold, a.val_kept_accuracy, a.val_automated_share) == (
        b.threshold,
        b.val_kept_accuracy,
        b.val_automated_share,
    )
    assert a.kept_accuracy != b.kept_accuracy


def test_unreachable_target_says_why():
    assert threshold_for(VAL, HOLD, target=0.9, min_kept=4).threshold is None
    rng = np.random.default_rng(0)
    noisy = synthetic(300, 1.0, seed=10)
    top = noisy.probs.max(1).argmax()  # the most confident image is wrong, so no t reaches 99.9%
    labels = noisy.labels.copy()
    labels[top] = (noisy.probs[top].argmax() + 1 + rng.integers(0, 3)) % 5
    plan = threshold_for(predictions(noisy.probs, labels), HOLD, target=0.999)
    assert plan.threshold is None and plan.kept_accuracy is None and plan.human_share is None
    assert "no threshold reaches 99.9%" in plan.reason
    assert json.dumps(plan.to_dict(), allow_nan=False)


@pytest.mark.parametrize("target", [1.5, 0.0, 1.0, -0.2])
def test_target_outside_0_1_is_a_user_error(target):
    with pytest.raises(UserError, match=f"--target must be between 0 and 1, not {target:g}"):
        threshold_for(VAL, HOLD, target=target)


def test_threshold_json_has_the_contract_keys():
    out = json.loads(json.dumps(threshold_for(VAL, HOLD, target=0.9).to_dict(), allow_nan=False))
    assert set(out) == {
        "target", "threshold", "kept_accuracy", "automated_share", "human_share", "reason",
        "val_kept_accuracy", "val_automated_share",
    }  # fmt: skip
    assert set(out["kept_accuracy"]) == {"estimate", "low", "high"}
    # nothing on the holdout reaches the threshold: null accuracy, not NaN
    empty = threshold_for(VAL, binary([0.6], [True]), target=0.9)
    assert json.dumps(empty.to_dict(), allow_nan=False) and empty.reason.startswith("no holdout image")


def test_an_accuracy_just_under_its_target_is_not_printed_as_the_target():
    # the Trust page printed "92%" with "-0 points vs 92%" and "right on 92%, below the 92% asked for"
    assert (against(11 / 12, 0.92), gap(11 / 12, 0.92)) == ("91.7%", "-0.3 points vs 92%")
    assert (against(0.80, 0.92), gap(0.80, 0.92)) == ("80%", "-12 points vs 92%")
    assert against(0.92, 0.92) == "92%"


def test_a_rescaling_that_moves_the_error_less_than_it_prints_is_not_called_worse():
    before, after = Estimate(0.0441, 0.02, 0.07), Estimate(0.0443, 0.02, 0.07)
    calibration = Calibration(before, after, 1.1, 0.9, 0.9, (), (), "equal-width", 10, 90, "", 0.3, 0.3, 30)
    assert calibration.scaling_words() == (
        "Rescaling the probabilities, fitted on 30 validation images, leaves the calibration error where "
        "it was (4.4%)."
    )
