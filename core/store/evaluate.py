"""Holdout metrics: one place computes each number that the pages and the CLI show.

Two readings of "confident" are kept apart:

- threshold accuracy (the original article's): an image counts as right only when
  P(true class) > t. Low-confidence images count as wrong, so it falls as t rises.
- selective accuracy and coverage: keep only images whose top probability is >= t;
  coverage is the share kept, selective accuracy the share of those that are right.
"""

from __future__ import annotations

import numpy as np

from core.store.record import Scores, ThresholdScore

THRESHOLDS = (0.5, 0.8)


def argmax_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probs.argmax(1) == labels)) if len(labels) else float("nan")


def threshold_accuracy(probs: np.ndarray, labels: np.ndarray, t: float) -> float:
    """Share of images with P(true class) > t."""
    if not len(labels):
        return float("nan")
    return float(np.mean(probs[np.arange(len(labels)), labels] > t))


def selective(probs: np.ndarray, labels: np.ndarray, t: float) -> tuple[float, float]:
    """(selective accuracy, coverage) over the images whose top probability is >= t."""
    if not len(labels):
        return float("nan"), float("nan")
    kept = probs.max(1) >= t
    coverage = float(kept.mean())
    accuracy = float(np.mean(probs[kept].argmax(1) == labels[kept])) if kept.any() else float("nan")
    return accuracy, coverage


def confusion(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows true class, columns predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, probs.argmax(1)), 1)
    return matrix


def threshold_score(probs: np.ndarray, labels: np.ndarray, t: float) -> ThresholdScore:
    """Both readings of confidence at threshold ``t``."""
    accuracy, coverage = selective(probs, labels, t)
    return ThresholdScore(
        threshold=t,
        threshold_accuracy=threshold_accuracy(probs, labels, t),
        selective_accuracy=accuracy,
        coverage=coverage,
    )


def summarize(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...] | list[str],
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> Scores:
    """Every headline number of a run's holdout predictions."""
    matrix = confusion(probs, labels, len(classes))
    counts = matrix.sum(1)
    per_class = [float(right / n) if n else None for right, n in zip(matrix.diagonal(), counts, strict=True)]
    return Scores(
        n=int(len(labels)),
        accuracy=argmax_accuracy(probs, labels),
        thresholds=tuple(threshold_score(probs, labels, t) for t in thresholds),
        per_class_accuracy=dict(zip(classes, per_class, strict=True)),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )
