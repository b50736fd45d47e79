"""9. The holdout audit on the bundled dataset: how many flipped holdout labels its ranking puts in
the top k, against Cleanlab's own ranking and its pruned list on the same out-of-sample
probabilities; how
many planted copies of training images (resized, re-encoded) it finds, and what else it reports;
and how long an audit takes once the features are cached.

``python -m bench.audit [--cache DIR]`` runs, on its own, the two checks the README's audit table
states besides those rows: 5% of the bundled dataset's holdout labels flipped (the files'
contents passed round a cycle across classes, as ``tests/test_audit.py`` does), and the clean
bundled dataset. Writes ``bench/results/audit.json`` and ``.md``. Without ``--cache`` it uses a
fresh cache (an audit follows the backbone and size of the runs it finds in the cache)."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from bench.grid import BASE
from bench.measure import Row, timed
from core.answers import audit
from core.base.paths import DEFAULT_DATA, PROJECT_ROOT
from core.data.datasets import scan
from core.data.splits import make_splits
from core.engine.features import cached_features
from core.store.config import default_image_size

COPIES = (((40, 40), 70), ((56, 56), 70), ((112, 112), 70), ((28, 28), 90))  # size, JPEG quality
RESULTS = Path(__file__).parent / "results"
FLIPPED_SHARE = 0.05  # of the holdout's labels, in the standalone check


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


def flip_holdout(root: Path, cache_dir: Path, share: float = FLIPPED_SHARE, seed: int = 0) -> dict[str, str]:
    """Flip ``share`` of the holdout's labels at random: the chosen holdout files pass their
    contents round a cycle, each image landing in a file of another class. Names and class sizes
    stay, so the split (drawn from them) is the clean copy's, and every flipped image is in the
    holdout. Returns the flipped files with the class of the image they now hold."""
    dataset = scan(root, cache_dir)
    holdout = make_splits(dataset.labels, dataset.classes).holdout
    rng = np.random.default_rng(seed)
    while True:
        chosen = rng.choice(holdout, round(share * len(holdout)), replace=False)
        labels = dataset.labels[chosen]
        if np.all(labels != np.roll(labels, 1)):  # file i gets the image of file i - 1
            break
    files = [root / dataset.paths[i] for i in chosen]
    contents = [f.read_bytes() for f in files]
    for file, content in zip(files, np.roll(np.array(contents, dtype=object), 1), strict=True):
        file.write_bytes(content)
    return {
        dataset.paths[i]: dataset.classes[label] for i, label in zip(chosen, np.roll(labels, 1), strict=True)
    }


def flipped_check(cache: Path, scratch: Path) -> dict:
    """The flipped labels of :func:`flip_holdout` against the audit of that copy: how many its
    top k (k flipped) and its whole list hold, and for how many found the true class is suggested."""
    data = shutil.copytree(DEFAULT_DATA, scratch / "fashion-mnist")
    flipped = flip_holdout(data, cache)
    found = audit.audit(data, cache)
    k = len(flipped)
    hits = [issue for issue in found.label_issues[:k] if issue.path in flipped]
    return {
        "flipped": k,
        "holdout": found.holdout_size,
        "top_k_hits": len(hits),
        "listed": len(found.label_issues),
        "listed_hits": sum(issue.path in flipped for issue in found.label_issues),
        "true_class_suggested": sum(issue.suggested == flipped[issue.path] for issue in hits),
        "near_duplicates": len(found.near_duplicates),
    }


def clean_check(cache: Path) -> dict:
    """The audit of the bundled dataset as it ships: near-duplicates, the share of holdout labels
    flagged with its Wilson interval, and the flagged images' given classes, most first."""
    found = audit.audit(DEFAULT_DATA, cache)
    share = found.label_share()
    return {
        "holdout": found.holdout_size,
        "flagged": len(found.label_issues),
        "share": share.to_dict(),
        "near_duplicates": len(found.near_duplicates),
        "flagged_by_given_class": dict(Counter(i.given for i in found.label_issues).most_common()),
        "backbone": found.backbone,
        "image_size": found.image_size,
    }


def _flipped_row(found: dict) -> str:
    k, hits = found["flipped"], found["top_k_hits"]
    return (
        f"| {k} of the {found['holdout']} holdout labels flipped | {found['listed']} images | top {k}: "
        f"{hits} of them (precision and recall {hits / k:.2f}); whole list: {found['listed_hits']} of {k}; "
        f"true class suggested for {found['true_class_suggested']} of {hits}; "
        f"{found['near_duplicates']} near-duplicates |"
    )


def _clean_row(found: dict) -> str:
    share = found["share"]
    classes = ", ".join(f"{name} {count}" for name, count in found["flagged_by_given_class"].items())
    return (
        f"| the clean dataset | {found['flagged']} of {found['holdout']} labels ({share['estimate']:.1%}, "
        f"95% interval {share['low']:.1%} to {share['high']:.1%}) | {found['near_duplicates']} "
        f"near-duplicates; flagged by given class: {classes} |"
    )


def markdown(result: dict) -> str:
    clean = result["clean"]
    head = (
        f"`{result['command']}` ({result['date']}, {result['seconds']:.0f} s): the bundled dataset, "
        f"{clean['backbone']} features at {clean['image_size']} px."
    )
    table = [
        "| check | flagged | found |",
        "|---|---|---|",
        _flipped_row(result["flipped"]),
        _clean_row(clean),
    ]
    return "\n".join([head, "", *table, ""])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[1])
    parser.add_argument("--cache", type=Path, help="cache folder (default: a fresh one, removed after)")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="hmd-audit-") as scratch:
        cache = args.cache or Path(scratch) / "cache"
        result = {"flipped": flipped_check(cache, Path(scratch)), "clean": clean_check(cache)}
    result = {
        "command": "python -m bench.audit",
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.time() - started,
        "data": str(DEFAULT_DATA.relative_to(PROJECT_ROOT)),
        **result,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "audit.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
