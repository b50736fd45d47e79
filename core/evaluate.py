"""Holdout metrics: one place computes each number that the pages and the CLI show.

Two readings of "confident" are kept apart:

- threshold accuracy (the original article's): an image counts as right only when
  P(true class) > t. Low-confidence images count as wrong, so it falls as t rises.
- selective accuracy and coverage: keep only images whose top probability is >= t;
  coverage is the share kept, selective accuracy the share of those that are right.
"""

from __future__ import annotations

import numpy as np

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


def threshold_row(probs: np.ndarray, labels: np.ndarray, t: float) -> dict[str, float]:
    """One row of the argmax-vs-threshold table."""
    accuracy, coverage = selective(probs, labels, t)
    return {"threshold": t, "threshold_accuracy": threshold_accuracy(probs, labels, t),
            "selective_accuracy": accuracy, "coverage": coverage}


def summarize(probs: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] | list[str],
              thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    """Every headline number of a run's holdout predictions, JSON-ready."""
    matrix = confusion(probs, labels, len(classes))
    counts = matrix.sum(1)
    per_class = [float(right / n) if n else None for right, n in zip(matrix.diagonal(), counts, strict=True)]
    rows = [threshold_row(probs, labels, t) for t in thresholds]
    return {
        "n": int(len(labels)),
        "accuracy": argmax_accuracy(probs, labels),
        "threshold_accuracy": {f"{r['threshold']:g}": r["threshold_accuracy"] for r in rows},
        "selective_accuracy": {f"{r['threshold']:g}": r["selective_accuracy"] for r in rows},
        "coverage": {f"{r['threshold']:g}": r["coverage"] for r in rows},
        "per_class_accuracy": dict(zip(classes, per_class, strict=True)),  # None: no image of it
        "confusion": matrix.tolist(),
    }


def predict_probs(model, inputs: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class probabilities of a model over uint8 images (N x H x W x 3) or feature rows."""
    import torch

    from core.device import best_device
    from core.images import to_tensor

    device = best_device()
    model = model.eval().to(device)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            batch = (to_tensor(chunk, device) if chunk.dtype == np.uint8
                     else torch.from_numpy(np.ascontiguousarray(chunk)).to(device))
            chunks.append(model(batch).float().softmax(1).cpu().numpy())
    return np.concatenate(chunks)
