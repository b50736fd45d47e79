"""Holdout metrics on probabilities whose answers are known."""

import numpy as np
import pytest

from core.store.evaluate import summarize

PROBS = np.array(
    [
        [0.90, 0.05, 0.05],  # true 0, right and confident
        [0.60, 0.30, 0.10],  # true 0, right, unsure
        [0.10, 0.85, 0.05],  # true 2, wrong and confident
        [0.20, 0.30, 0.50],  # true 2, right, unsure
    ]
)
LABELS = np.array([0, 0, 2, 2])


def test_argmax_threshold_selective_and_coverage():
    s = summarize(PROBS, LABELS, ["a", "b", "c"])
    assert s.accuracy == 0.75
    # the article's threshold accuracy: P(true) > t, strictly
    assert (s.at(0.5).threshold_accuracy, s.at(0.8).threshold_accuracy) == (0.5, 0.25)
    # keep images whose top probability is >= t
    assert (s.at(0.5).coverage, s.at(0.8).coverage) == (1.0, 0.5)
    assert s.at(0.5).selective_accuracy == 0.75
    assert s.at(0.8).selective_accuracy == 0.5
    # the JSON layout summaries have always had
    assert s.to_dict()["threshold_accuracy"] == {"0.5": 0.5, "0.8": 0.25}


def test_per_class_and_confusion():
    s = summarize(PROBS, LABELS, ["a", "b", "c"])
    assert s.per_class_accuracy == {"a": 1.0, "b": None, "c": 0.5}
    assert s.confusion == ((2, 0, 0), (0, 0, 0), (0, 1, 1))


def test_a_class_without_images_has_no_accuracy_rather_than_zero():
    s = summarize(PROBS, LABELS, ["a", "b", "c"])
    assert s.per_class_accuracy["b"] is None


def test_no_image_kept_gives_nan_not_a_crash():
    s = summarize(PROBS, LABELS, ["a", "b", "c"], thresholds=(0.95,)).at(0.95)
    assert s.coverage == 0.0
    assert np.isnan(s.selective_accuracy)
    assert s.threshold_accuracy == pytest.approx(0.0)


def test_each_class_accuracy_carries_the_95_percent_wilson_interval_of_its_own_images():
    """The Run page states each class's accuracy with this interval: 2 of 2 right is not the
    news 200 of 200 would be. Ends from the Wilson formula by hand (z = 1.96)."""
    found = summarize(PROBS, LABELS, ["a", "b", "c"]).class_accuracies()
    assert list(found) == ["a", "c"], "b has no holdout image: no accuracy, no interval"
    a, c = found["a"], found["c"]
    assert (a.estimate, a.low, a.high) == pytest.approx((1.0, 0.34238, 1.0), abs=1e-5)  # 2 of 2
    assert (c.estimate, c.low, c.high) == pytest.approx((0.5, 0.09453, 0.90547), abs=1e-5)  # 1 of 2
