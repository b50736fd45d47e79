"""Auditing the holdout before its bars are trusted: likely label errors, training images leaked
into the holdout or validation set, and the class pairs the runs confuse most.

Label issues are confident learning's ranking: heads that never saw an image give it an
out-of-sample probability for its label; images whose label the heads do not predict are listed,
least believed first. On the bundled dataset with 5% of holdout labels flipped (10 draws) this
puts 84% of the flips in the top k (72% at worst). Cleanlab 2.9's ``find_label_issues`` on the same
probabilities keeps a shorter, more precise list (56 images, 36% flips; here 96 and 26%) but drops
a fifth of the flips from it, so its top k holds 75% (60% at worst): the simple rule is kept.

Near-duplicates must survive resizing and JPEG re-encoding. On 28 px images upscaled to 96 px the
backbone's features do not (a copy resized to 40 px at JPEG quality 70 can fall to a cosine of
0.70 while different trousers reach 0.97), and neither does a 64-bit perceptual hash (276 distinct
pairs within 4 bits). A 256-bit one does: see :data:`MAX_HASH_DISTANCE`. It is imagehash's
``phash(hash_size=16)`` in a few lines of numpy and scipy (measured to agree within a pair or
two in every count above), which saves two packages.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.base.errors import UserError
from core.base.intervals import Estimate, wilson
from core.base.paths import check_writable, read_json, write_json
from core.base.progress import progress as progress_bar
from core.base.words import counted
from core.data.datasets import scan
from core.data.images import image_array
from core.data.splits import HOLDOUT_SHARE, VAL_SHARE, make_splits
from core.engine.features import cached_features
from core.models.backbones import get_spec
from core.store.config import MAX_IMAGE_SIZE, ORIGINAL_BACKBONE, default_image_size
from core.store.evaluate import summarize
from core.store.record import Predictions, Summary
from core.store.runs import list_runs
from core.store.tables import dataset_label, experiment_label, match_experiment

AUDIT_VERSION = 1  # bump when a change alters what an audit finds: older cached audits are recomputed
DEFAULT_SPLIT = (HOLDOUT_SHARE, VAL_SHARE, 0)
# A pair is a near-duplicate when both hold. Measured on the bundled dataset (its holdout and
# validation against its training pool: 4 million pairs) and 500 copies of pool images per kind:
# copies resized to 40, 56 or 112 px and saved at JPEG quality 70 are at most 22 bits from their
# originals, re-saved at quality 90 at most 24 (and 97% of those re-saved at quality 70 at their
# 28 px); the closest distinct images are 30 bits apart. Every copy has a cosine similarity of 0.58
# or more; the floor turns away shirts of one cut and another pattern, which can hash as close as
# 32 bits at 0.43. Slight crops are missed: 1 px off a 28 px image moves the hash 10 to 20 bits.
MIN_SIMILARITY = 0.5
MAX_HASH_DISTANCE = 24  # of HASH_BITS
HASH_SIZE = 16  # the 16 x 16 lowest frequencies of a 64 x 64 greyscale DCT
HASH_BITS = HASH_SIZE * HASH_SIZE
BLOCK = 128  # holdout or validation images compared with the whole pool at once
# A flag the model's own confusion explains: its given and suggested classes are a pair the runs
# mix up (one of them predicted as the other for at least CONFUSED_SHARE of its holdout images),
# or the heads still gave the image's own label at least UNSURE (a near coin flip, as the textile
# walkthrough's local_defect/ok flags at 0.34 to 0.41 were). Such flags say more about the model
# than about the labels; the others are the ones to look at first.
CONFUSED_SHARE = 0.1
UNSURE = 0.25


@dataclass(frozen=True)
class LabelIssue:
    """A holdout image whose label the cross-validated heads do not believe. ``score`` is one
    minus the out-of-sample probability of the given label: 0.97 means that heads trained
    without the image gave its label 3%."""

    index: int
    path: str
    given: str
    suggested: str
    score: float

    @property
    def given_label(self) -> str:
        return self.given

    @property
    def suggested_label(self) -> str:
        return self.suggested


@dataclass(frozen=True)
class NearDuplicate:
    """A training-pool image and a holdout or validation image that look like copies."""

    train_index: int
    train_path: str
    other_index: int
    other_path: str
    other_set: str  # "holdout" or "validation"
    similarity: float  # cosine similarity of the backbone's features
    hash_distance: int  # bits that differ between the perceptual hashes (of HASH_BITS)


@dataclass(frozen=True)
class ConfusedPair:
    """Holdout images of one class predicted as another, summed over runs."""

    true: str
    predicted: str
    count: int
    share: float  # count / holdout images of the true class, over the same runs


@dataclass(frozen=True)
class Confusion:
    """A confused pair as a person reads it: per run, not summed over runs."""

    true: str
    predicted: str
    per_run: float  # holdout images of ``true`` predicted as ``predicted``, mean over the runs
    class_images: int  # holdout images of ``true`` (the same images in every run)
    share: Estimate  # per_run / class_images, with the Wilson interval of class_images images

    def images_words(self) -> str:
        """The mean as whole images ("about 2 of 15"): a room reads 2.3 images as an error."""
        whole = round(self.per_run)
        if abs(self.per_run - whole) < 0.05:
            return f"{whole} of {self.class_images}"
        if self.per_run < 1:
            return f"under 1 of {self.class_images}"
        return f"about {whole} of {self.class_images}"


@dataclass(frozen=True)
class Audit:
    """What is wrong with a dataset's holdout, for one backbone, image size and split."""

    dataset: str
    fingerprint: str
    backbone: str
    image_size: int
    split: tuple[float, float, int]  # holdout share, validation share, split seed
    label_issues: tuple[LabelIssue, ...]
    near_duplicates: tuple[NearDuplicate, ...]
    confused_pairs: tuple[ConfusedPair, ...]
    holdout_size: int = 0
    confused_runs: int = 0  # the runs the confused pairs are summed over
    confused_train: int = 0  # their training images (the most of any run: see _most_labels)

    def label_share(self) -> Estimate:
        """The share of holdout labels flagged, with its Wilson interval."""
        return wilson(len(self.label_issues), self.holdout_size)

    def confusions(self) -> tuple[Confusion, ...]:
        """The confused pairs per run: a class of 10 holdout images is never shown as 199."""
        runs = max(1, self.confused_runs)
        found = []
        for pair in self.confused_pairs:
            images = round(pair.count / pair.share / runs)
            found.append(
                Confusion(
                    pair.true, pair.predicted, pair.count / runs, images, wilson(pair.count / runs, images)
                )
            )
        return tuple(found)

    def explained(self) -> tuple[LabelIssue, ...]:
        """The flags the model's own confusion explains (:data:`CONFUSED_SHARE`, :data:`UNSURE`)."""
        mixed = {
            frozenset((p.true, p.predicted)) for p in self.confusions() if p.share.estimate >= CONFUSED_SHARE
        }
        return tuple(
            issue
            for issue in self.label_issues
            if frozenset((issue.given, issue.suggested)) in mixed or 1 - issue.score >= UNSURE
        )

    def flags_in_words(self) -> str:
        """How many flags are the model's confusion rather than wrong labels, for a room that would
        otherwise hear "a third of your labels are wrong"."""
        flagged, explained = len(self.label_issues), len(self.explained())
        if not flagged:
            return "No holdout label looks wrong to a classifier trained without it."
        pairs = sorted({" and ".join(sorted((i.given, i.suggested))) for i in self.explained()})
        between = f" ({'; '.join(pairs[:3])}{' and others' if len(pairs) > 3 else ''})" if pairs else ""
        rest = flagged - explained
        others = {
            0: "None is a confident disagreement.",
            1: "The other one is a confident disagreement: look at it first.",
        }.get(rest, f"The other {rest} are confident disagreements: look at those first.")
        return (
            f"{explained} of the {flagged} flagged images{between} are ones the model itself is unsure "
            f"about: between classes it often mixes up, or still given at least {UNSURE:.0%} for their own "
            f"label. They say more about the model than about the labels. {others} A flag is a reason to "
            "look, not a verdict."
        )

    def leakage_warning(self) -> str | None:
        """One line for the user when the holdout or validation set has copies of training images."""
        if not self.near_duplicates:
            return None
        others = len({pair.other_index for pair in self.near_duplicates})
        return (
            f"{counted(others, 'holdout/validation image')} "
            f"{'is a near-copy' if others == 1 else 'are near-copies'} of training images: "
            "accuracy on them overstates accuracy on new images"
        )

    def to_dict(self) -> dict:
        holdout, val, split_seed = self.split
        rows = {name: [dataclasses.asdict(x) for x in getattr(self, name)] for name in _LISTS}
        for row in rows["label_issues"]:  # the contract's wording too ("given label", "suggested label")
            row.update(given_label=row["given"], suggested_label=row["suggested"])
        return {
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "backbone": self.backbone,
            "image_size": self.image_size,
            "split": {"holdout": holdout, "val": val, "split_seed": split_seed},
            "holdout_size": self.holdout_size,
            "confused_runs": self.confused_runs,
            "confused_train": self.confused_train,
            **rows,
            "leakage_warning": self.leakage_warning(),
        }

    @classmethod
    def from_dict(cls, record: dict) -> Audit:
        split = record["split"]
        return cls(
            **{
                key: record[key]
                for key in ("dataset", "fingerprint", "backbone", "image_size", "holdout_size")
            },
            confused_runs=record.get("confused_runs", 0),
            confused_train=record.get("confused_train", 0),
            split=(float(split["holdout"]), float(split["val"]), int(split["split_seed"])),
            **{name: tuple(_row(kind, row) for row in record[name]) for name, kind in _LISTS.items()},
        )


def _row(kind: type, row: dict):
    """A dataclass from a JSON row, ignoring keys it does not have (aliases, newer fields)."""
    return kind(**{f.name: row[f.name] for f in dataclasses.fields(kind)})


_LISTS = {"label_issues": LabelIssue, "near_duplicates": NearDuplicate, "confused_pairs": ConfusedPair}


def _unit(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def out_of_sample(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    folds: int = 5,
    seed: int = 0,
    show: bool = False,
) -> np.ndarray:
    """Each image's class probabilities from a logistic-regression head trained on the other
    folds (L2-normalised features, C = 1: as good as C = 10 or 100 here, and 10x quicker)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x = _unit(features)
    present = np.bincount(labels, minlength=n_classes)
    folds = max(2, min(folds, int(present[present > 0].min())))
    probs = np.zeros((len(labels), n_classes))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, labels)
    for train, test in progress_bar(split, "cross-validating heads", total=folds, enabled=show, unit="fold"):
        with warnings.catch_warnings():  # a head short of convergence still ranks the images
            warnings.simplefilter("ignore", ConvergenceWarning)
            head = LogisticRegression(C=1.0, max_iter=200).fit(x[train], labels[train])
        probs[np.ix_(test, head.classes_)] = head.predict_proba(x[test])
    return probs


def label_issues(
    features: np.ndarray,
    labels: np.ndarray,
    holdout_idx: np.ndarray,
    pool_idx: np.ndarray,
    classes: tuple[str, ...],
    paths: tuple[str, ...],
    folds: int = 5,
    seed: int = 0,
    progress: bool = False,
) -> list[LabelIssue]:
    """Holdout images whose out-of-sample prediction is not their label, least believed first.
    The heads train on the holdout and the training pool together (each image judged by heads
    that never saw it); only holdout images are listed, as the audit is of the holdout."""
    rows = np.concatenate([holdout_idx, pool_idx]).astype(np.int64)
    probs = out_of_sample(np.asarray(features)[rows], labels[rows], len(classes), folds, seed, progress)
    held, given = probs[: len(holdout_idx)], labels[holdout_idx]
    score = 1.0 - held[np.arange(len(given)), given]
    suggested = held.argmax(axis=1)
    flagged = np.flatnonzero(suggested != given)
    return [
        LabelIssue(
            int(holdout_idx[i]),
            paths[holdout_idx[i]],
            classes[given[i]],
            classes[suggested[i]],
            float(score[i]),
        )
        for i in flagged[np.argsort(-score[flagged], kind="stable")]
    ]


def perceptual_hashes(images: np.ndarray, indices: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """DCT hashes of ``images[indices]`` as N x 4 uint64: greyscale, 64 x 64 Lanczos, 2-D DCT,
    the 16 x 16 lowest frequencies against their median. Reads a memory-mapped cache in chunks."""
    from scipy.fft import dctn

    side = HASH_SIZE * 4
    out = np.empty((len(indices), HASH_BITS // 64), dtype=np.uint64)
    starts = range(0, len(indices), chunk)
    for start in progress_bar(starts, "hashing images", enabled=False, unit="block"):
        part = indices[start : start + chunk]
        grey = np.stack(
            [
                np.asarray(
                    Image.fromarray(np.asarray(images[i]))
                    .convert("L")
                    .resize((side, side), Image.Resampling.LANCZOS),
                    dtype=np.float64,
                )
                for i in part
            ]
        )
        low = dctn(grey, axes=(1, 2), norm="ortho")[:, :HASH_SIZE, :HASH_SIZE].reshape(len(part), -1)
        bits = np.packbits(low > np.median(low, axis=1, keepdims=True), axis=1)
        out[start : start + len(part)] = bits.view(np.uint64)
    return out


def near_duplicates(
    features: np.ndarray,
    images: np.ndarray,
    train_idx: np.ndarray,
    other_sets: dict[str, np.ndarray],
    paths: tuple[str, ...],
    min_similarity: float = MIN_SIMILARITY,
    max_hash_distance: int = MAX_HASH_DISTANCE,
    progress: bool = False,
) -> list[NearDuplicate]:
    """Pairs of a training-pool image and a holdout or validation image (``other_sets`` by
    name) whose features have a cosine of at least ``min_similarity`` and whose hashes are at
    most ``max_hash_distance`` bits apart, closest first. ``BLOCK`` images are compared with the
    whole pool at a time, so 2,000 against 10,000 stays within tens of megabytes."""
    features = np.asarray(features)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    train_unit, train_hash = _unit(features[train_idx]), perceptual_hashes(images, train_idx)
    found = []
    for name, idx in other_sets.items():
        idx = np.asarray(idx, dtype=np.int64)
        hashes = perceptual_hashes(images, idx)
        for start in progress_bar(
            range(0, len(idx), BLOCK), f"comparing {name}", enabled=progress, unit="block"
        ):
            block = slice(start, start + BLOCK)
            similarity, distance = _compare(features[idx[block]], hashes[block], train_unit, train_hash)
            close = (similarity >= min_similarity) & (distance <= max_hash_distance)
            for row, col in zip(*np.nonzero(close), strict=True):
                t, o = int(train_idx[col]), int(idx[start + row])
                sim, dist = float(similarity[row, col]), int(distance[row, col])
                found.append(NearDuplicate(t, paths[t], o, paths[o], name, sim, dist))
    return sorted(found, key=lambda p: (p.hash_distance, -p.similarity, p.other_index, p.train_index))


def _compare(
    features: np.ndarray, hashes: np.ndarray, ref_unit: np.ndarray, ref_hashes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and hash distances of every row against every reference row."""
    similarity = _unit(features) @ ref_unit.T
    distance = np.bitwise_count(hashes[:, None, :] ^ ref_hashes[None, :, :]).sum(axis=2)
    return similarity, distance


def copies_of(
    features: np.ndarray,
    hashes: np.ndarray,
    ref_features: np.ndarray,
    ref_hashes: np.ndarray,
    min_similarity: float = MIN_SIMILARITY,
    max_hash_distance: int = MAX_HASH_DISTANCE,
) -> np.ndarray:
    """For each image (its features and :func:`perceptual_hashes`), the reference image it is a
    near-duplicate of by the same two tests as :func:`near_duplicates` (the closest hash first),
    or -1: how images from outside a dataset (an unlabelled pool) are checked against it."""
    found = np.full(len(features), -1, dtype=np.int64)
    if not len(ref_features):
        return found
    ref_unit = _unit(ref_features)
    for start in progress_bar(
        range(0, len(features), BLOCK), "looking for near-copies", enabled=False, unit="block"
    ):
        block = slice(start, start + BLOCK)
        similarity, distance = _compare(features[block], hashes[block], ref_unit, ref_hashes)
        distance = np.where(similarity >= min_similarity, distance, HASH_BITS + 1)
        best = distance.argmin(axis=1)
        close = distance[np.arange(len(best)), best] <= max_hash_distance
        found[block] = np.where(close, best, -1)
    return found


def confused_pairs(summaries: Iterable, top: int = 10) -> list[ConfusedPair]:
    """The ``top`` (true, predicted) class pairs with the most holdout mistakes over the runs
    given (each run's confusion matrix: rows true classes, columns predicted)."""
    counts: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    for summary in summaries:
        names = summary.classes
        for t, row in enumerate(summary.holdout.confusion):
            totals[names[t]] += int(sum(row))
            counts.update({(names[t], names[p]): int(n) for p, n in enumerate(row) if p != t and n})
    pairs = [ConfusedPair(t, p, n, n / totals[t]) for (t, p), n in counts.items()]
    return sorted(pairs, key=lambda c: (-c.count, -c.share, c.true, c.predicted))[:top]


def _split_key(split: tuple[float, float, int]) -> str:
    return f"{split[0]:g}-{split[1]:g}-{split[2]}"


def _runs_of(cache_dir: Path, fingerprint: str, split: tuple[float, float, int]) -> list:
    """Complete runs on this dataset content and split, newest first."""

    def same(config) -> bool:
        return all(map(math.isclose, config.split, split))

    return [s for s in list_runs(cache_dir) if s.info.fingerprint == fingerprint and same(s.config)]


def _with_pairs(found: Audit, runs: list, experiment: str | None = None) -> Audit:
    if experiment is not None:
        experiment = match_experiment(
            experiment, tuple(dict.fromkeys(experiment_label(s.config) for s in runs))
        )
        runs = [s for s in runs if experiment_label(s.config) == experiment]
    runs = _most_labels(runs)
    return dataclasses.replace(
        found,
        confused_pairs=tuple(confused_pairs(runs)),
        confused_runs=len(runs),
        confused_train=runs[0].n_train if runs else 0,
    )


def _most_labels(runs: list) -> list:
    """The runs trained on the most images: the confusions that more labels of the kind already
    given did not cure (a 1-image model confuses everything, and would swamp them)."""
    most = max((s.n_train for s in runs), default=0)
    return [s for s in runs if s.n_train == most]


def _load(path: Path) -> Audit | None:
    """A cached audit; ``None`` if damaged or from another version (it is recomputed)."""
    try:
        record = read_json(path)
        return Audit.from_dict(record) if record.get("version") == AUDIT_VERSION else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def cached(
    cache_dir: Path, fingerprint: str, split: tuple[float, float, int] = DEFAULT_SPLIT
) -> Audit | None:
    """The newest audit of this dataset content and split (any backbone and size) without
    computing one, with confused pairs over all its runs; ``None`` if it was never audited."""
    files = (cache_dir / "audits").glob(f"{fingerprint}-*-{_split_key(split)}.json")
    found = [a for a in map(_load, sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)) if a]
    return _with_pairs(found[0], _runs_of(cache_dir, fingerprint, split)) if found else None


def audit(
    data: str | Path,
    cache_dir: Path,
    backbone: str | None = None,
    image_size: int | None = None,
    split: tuple[float, float, int] = DEFAULT_SPLIT,
    experiment: str | None = None,
    progress: bool = False,
) -> Audit:
    """Audit a dataset's holdout. Label issues and near-duplicates are computed once per content,
    backbone, image size and split, and cached under ``cache/audits/``; confused pairs are read
    afresh from the complete runs on the same content and split (``experiment``'s only: its
    label, or a part only it holds). The backbone defaults to the runs' (else EfficientNet-Lite0),
    the size to theirs with it (else the backbone's default for the images).

    Raises:
        UserError: a backbone unknown or without pretrained weights, a size out of range, an
            experiment with no runs here, or a dataset that cannot be scanned or split.
    """

    split = (float(split[0]), float(split[1]), int(split[2]))
    dataset = scan(data, cache_dir, progress=progress)
    splits = make_splits(dataset.labels, dataset.classes, *split)
    runs = _runs_of(cache_dir, dataset.fingerprint, split)
    backbone, size = _backbone_and_size(runs, backbone, image_size, dataset.median_side)
    path = cache_dir / "audits" / f"{dataset.fingerprint}-{backbone}-{size}-{_split_key(split)}.json"
    found = _load(path) if path.exists() else None
    if found is None:
        found = _computed(dataset, splits, backbone, size, cache_dir, split, progress)
        write_json(path, {"version": AUDIT_VERSION, **found.to_dict()}, derived=True)
    return _with_pairs(_named_today(found, dataset), runs, experiment)


def _backbone_and_size(
    runs: list[Summary], backbone: str | None, image_size: int | None, median_side: float
) -> tuple[str, int]:
    """The backbone (the runs' most used, else EfficientNet-Lite0) and image size (theirs with
    it, else the backbone's default for the images) the audit's features come from.

    Raises:
        UserError: a backbone without pretrained weights, or a size out of range.
    """
    usable = [s.config for s in runs if get_spec(s.config.backbone).weights != "none"]
    if backbone is None:
        backbone = Counter(c.backbone for c in usable).most_common(1)[0][0] if usable else ORIGINAL_BACKBONE
    if get_spec(backbone).weights == "none":
        raise UserError(
            f"backbone '{backbone}' has no pretrained weights; the audit needs pretrained features"
        )
    sizes = Counter(c.image_size for c in usable if c.backbone == backbone)
    size = image_size or (sizes.most_common(1)[0][0] if sizes else default_image_size(backbone, median_side))
    if not 32 <= size <= MAX_IMAGE_SIZE:
        raise UserError(f"--image-size must be between 32 and {MAX_IMAGE_SIZE} pixels, not {size}")
    return backbone, size


def _computed(dataset, splits, backbone: str, size: int, cache_dir: Path, split, progress: bool) -> Audit:
    """Label issues and near-duplicates from the backbone's features: the part worth caching."""

    features = cached_features(dataset, backbone, size, cache_dir).array
    pool = np.concatenate(splits.pools)
    issues = label_issues(
        features, dataset.labels, splits.holdout, pool, dataset.classes, dataset.paths, progress=progress
    )
    others = {"holdout": splits.holdout, "validation": splits.val}
    images = image_array(dataset, size, cache_dir)
    pairs = near_duplicates(features, images, pool, others, dataset.paths, progress=progress)
    return Audit(
        dataset=str(dataset.root),
        fingerprint=dataset.fingerprint,
        backbone=backbone,
        image_size=size,
        split=split,
        label_issues=tuple(issues),
        near_duplicates=tuple(pairs),
        confused_pairs=(),
        holdout_size=len(splits.holdout),
    )


def _named_today(found: Audit, dataset) -> Audit:
    """A renamed copy keeps its fingerprint and file order: report today's folder and names."""
    names = dataset.paths
    return dataclasses.replace(
        found,
        dataset=str(dataset.root),
        label_issues=tuple(dataclasses.replace(i, path=names[i.index]) for i in found.label_issues),
        near_duplicates=tuple(
            dataclasses.replace(d, train_path=names[d.train_index], other_path=names[d.other_index])
            for d in found.near_duplicates
        ),
    )


def _excluded_path(cache_dir: Path, fingerprint: str, split: tuple[float, float, int]) -> Path:
    return cache_dir / "audits" / "excluded" / f"{fingerprint}-{_split_key(split)}.json"


def excluded(
    cache_dir: Path, fingerprint: str, split: tuple[float, float, int] = DEFAULT_SPLIT
) -> tuple[str, ...]:
    """Holdout paths a person chose to leave out of scoring for this dataset and split."""
    path = _excluded_path(cache_dir, fingerprint, split)
    try:
        return tuple(str(p) for p in read_json(path)) if path.exists() else ()
    except (OSError, ValueError, TypeError):
        return ()  # a damaged choice is no choice: the page shows the whole holdout


def set_excluded(
    cache_dir: Path, fingerprint: str, split: tuple[float, float, int], paths: Iterable[str]
) -> None:
    """Remember the holdout paths to leave out (none: score on the whole holdout again)."""
    path = _excluded_path(cache_dir, fingerprint, split)
    chosen = sorted(set(paths))
    check_writable()
    if chosen:
        write_json(path, chosen)
    else:
        path.unlink(missing_ok=True)


def variant_label(dataset_label: str, count: int) -> str:
    """The name of a holdout variant, never to be mixed with the original holdout's numbers."""
    return f"{dataset_label} · without {count} audited image{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class AuditedVariant:
    """Runs of one dataset rescored without the holdout images a person left out on the Audit
    page, under a dataset label of their own (:func:`variant_label`)."""

    label: str
    summaries: tuple[Summary, ...]
    predictions: dict[str, Predictions]  # the rescored holdout predictions, by run id


def audited_variants(
    cache_dir: Path, summaries: Iterable[Summary], predictions_of: Callable[[str], Predictions]
) -> list[AuditedVariant]:
    """For each dataset (and split) of ``summaries`` with images left out, its runs rescored
    without them: what the Holdout page shows beside the original holdout's numbers.
    ``predictions_of(run_id)`` reads a run's holdout predictions (a page passes its cached read)."""

    groups: dict[str, list[Summary]] = {}
    for summary in summaries:
        groups.setdefault(dataset_label(summary.config, summary.info.fingerprint), []).append(summary)
    found = []
    for label, group in groups.items():
        config = group[0].config
        split = config.split
        left_out = set(excluded(cache_dir, group[0].info.fingerprint, split))
        if left_out:
            pairs = [rescored(s, predictions_of(s.run_id), left_out) for s in group]
            found.append(
                AuditedVariant(
                    variant_label(label, len(left_out)),
                    tuple(summary for summary, _ in pairs),
                    {summary.run_id: kept for summary, kept in pairs},
                )
            )
    return found


def rescored(summary, predictions, left_out: Iterable[str]):
    """A run's summary and holdout predictions without the images at ``left_out``."""

    kept = predictions.without(set(left_out))
    scores = summarize(kept.probs, kept.labels, summary.classes)
    return dataclasses.replace(summary, n_holdout=scores.n, holdout=scores), kept
