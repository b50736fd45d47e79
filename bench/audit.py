"""9. The holdout audit on the bundled dataset: how many flipped holdout labels its ranking puts in
the top k, against Cleanlab's own ranking and its pruned list on the same out-of-sample
probabilities; how
many planted copies of training images (resized, re-encoded) it finds, and what else it reports;
and how long an audit takes once the features are cached."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from bench.grid import BASE
from bench.measure import Row, timed
from core.answers import audit
from core.base.paths import DEFAULT_DATA
from core.data.datasets import scan
from core.data.splits import make_splits
from core.engine.features import cached_features
from core.store.config import default_image_size

COPIES = (((40, 40), 70), ((56, 56), 70), ((112, 112), 70), ((28, 28), 90))  # size, JPEG quality


def run(cache: Path, scratch: Path, full: bool) -> list[Row]:
    return [*_labels(cache, 10 if full else 4), *_copies(cache, scratch, 200 if full else 60)]


def _labels(cache: Path, draws: int) -> list[Row]:
    """5% of the holdout's labels flipped to another class at random, ``draws`` times; the top k
    (k = the number flipped) of our ranking against two of Cleanlab's on the same out-of-sample
    probabilities: its label-quality ranking of every image (``get_label_quality_scores``, the
    same k: rankings compared alone), and ``find_label_issues``' ranked list, which it prunes
    first (a shorter list can hold fewer flips: that row measures the pruning too)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    dataset = scan(DEFAULT_DATA, cache)
    splits = make_splits(dataset.labels, dataset.classes)
    size = default_image_size(BASE.backbone, dataset.median_side)
    features = cached_features(dataset, BASE.backbone, size, cache).array
    holdout, pool = splits.holdout, np.concatenate(splits.pools)
    rows = np.concatenate([holdout, pool])
    k = round(0.05 * len(holdout))
    ours, ranking, pruned, lengths = [], [], [], []
    for draw in range(draws):
        rng = np.random.default_rng(100 + draw)
        labels = dataset.labels.copy()
        flipped = rng.choice(holdout, k, replace=False)
        for i in flipped:
            labels[i] = rng.choice([c for c in range(len(dataset.classes)) if c != labels[i]])
        planted = set(flipped.tolist())
        found = audit.label_issues(features, labels, holdout, pool, dataset.classes, dataset.paths)
        ours.append(len({i.index for i in found[:k]} & planted) / k)
        probs = audit.out_of_sample(features[rows], labels[rows], len(dataset.classes))
        quality = get_label_quality_scores(labels[rows][: len(holdout)], probs[: len(holdout)])
        ranking.append(len({int(holdout[r]) for r in np.argsort(quality)[:k]} & planted) / k)
        ranked = find_label_issues(labels[rows], probs, return_indices_ranked_by="self_confidence")
        listed = [int(rows[r]) for r in ranked if r < len(holdout)]
        lengths.append(len(listed))
        pruned.append(len(set(listed[:k]) & planted) / k)
    about = f"{k} of {len(holdout)} labels flipped, {draws} draws; worst draw: ours {min(ours):.2f}"
    return [
        Row(
            "audit",
            "flipped labels in the top k vs Cleanlab's label-quality ranking",
            float(np.mean(ours)),
            float(np.mean(ranking)),
            "recall",
            target=1.0,
            note=f"{about}, Cleanlab {min(ranking):.2f}; the rankings alone, same k",
        ),
        Row(
            "audit",
            "flipped labels in the top k vs Cleanlab's pruned list",
            float(np.mean(ours)),
            float(np.mean(pruned)),
            "recall",
            note=f"{about}, Cleanlab {min(pruned):.2f}; find_label_issues keeps "
            f"{min(lengths)} to {max(lengths)} holdout images, fewer than k at times: measures its pruning",
        ),
    ]


def _copies(cache: Path, scratch: Path, count: int) -> list[Row]:
    """``count`` training-pool images copied into their class folders, resized and re-encoded."""
    data = shutil.copytree(DEFAULT_DATA, scratch / "audit-copies")
    dataset = scan(data, cache)
    pool = np.concatenate(make_splits(dataset.labels, dataset.classes).pools)
    planted = {}
    for n, i in enumerate(np.random.default_rng(0).choice(pool, count, replace=False)):
        original = Path(dataset.paths[i])
        side, quality = COPIES[n % len(COPIES)]
        image = Image.open(data / original).convert("RGB").resize(side, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        copy = original.with_name(f"copy-{original.stem}.jpg")
        (data / copy).write_bytes(buffer.getvalue())
        planted[copy.as_posix()] = original.as_posix()
    dataset = scan(data, cache)
    splits = make_splits(dataset.labels, dataset.classes)
    held = {dataset.paths[i] for i in np.concatenate([splits.holdout, splits.val])}
    expected = {
        (original, copy) if copy in held else (copy, original)
        for copy, original in planted.items()
        if (copy in held) != (original in held)
    }
    cached_features(dataset, BASE.backbone, default_image_size(BASE.backbone, dataset.median_side), cache)
    found, seconds = timed(lambda: audit.audit(data, cache))
    pairs = {(d.train_path, d.other_path) for d in found.near_duplicates}
    return [
        Row(
            "audit",
            "planted copies across the split found",
            len(pairs & expected) / len(expected),
            None,
            "recall",
            target=0.95,
            note=f"{count} copies (40, 56, 112 px at JPEG 70; 28 px at JPEG 90), {len(expected)} across the "
            f"split; {len(pairs - expected)} other pair(s) reported",
        ),
        Row(
            "audit",
            "one audit, features cached",
            seconds,
            None,
            "s",
            better="lower",
            note=f"{len(found.label_issues)} labels flagged of {found.holdout_size}",
        ),
    ]
