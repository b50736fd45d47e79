"""An unlabelled pool beside a labelled dataset: its images checked and decoded once, their
frozen-backbone features from the same backbone, image size and cache as the dataset's runs, the
current head's probabilities on them, and the images that must never be proposed.

The pool is a folder in any layout (:func:`core.data.datasets.scan_unlabelled`), cached by its
content like a dataset. The "current head" is the dataset's frozen-backbone run trained on the
most labels (then the most accurate, then the newest): the model a team would use today, so its
doubts are the ones a new label resolves. With no such run the pool is at its cold start:
no probabilities, and the features and size are those a first run would use
(:func:`core.store.config.default_config`).

A pool image that is a near-copy of a labelled or holdout image (the audit's two tests,
:func:`core.answers.audit.copies_of`) is left out, named with the image it copies: labelling it
again buys nothing, and one that copies a holdout image would leak the holdout into training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.answers.audit import DEFAULT_SPLIT, copies_of, perceptual_hashes
from core.base.errors import UserError
from core.base.words import counted
from core.data.datasets import Dataset, scan, scan_unlabelled
from core.data.images import image_array
from core.data.splits import make_splits
from core.engine.features import cached_features
from core.engine.pipeline import run_inputs
from core.models.inference import predict_probs
from core.store import runs
from core.store.config import ORIGINAL_BACKBONE, RunConfig, Split, default_config, resolve, uses_features
from core.store.record import Summary

# A pool with at least this share of its images copying holdout images is the holdout itself (or
# most of it) given by mistake: ranking it would only hand the holdout to the labellers.
HOLDOUT_SHARE_REFUSED = 0.5


@dataclass(frozen=True)
class Excluded:
    """A pool image left out of the batch, and why, in words."""

    path: str  # absolute, as the batch's items
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Pool:
    """The pool images that may be proposed, with what the strategies read about them."""

    root: Path
    paths: tuple[str, ...]  # relative to ``root``, the rows of ``features`` and ``probs``
    features: np.ndarray = field(repr=False)  # (n, d)
    probs: np.ndarray | None = field(repr=False)  # (n, k) the current head's; None at the cold start
    labelled: np.ndarray = field(repr=False)  # (m, d) the dataset's labelled images outside the holdout
    classes: tuple[str, ...]
    excluded: tuple[Excluded, ...]
    head_run: str | None  # the run whose head gave ``probs``
    backbone: str
    image_size: int

    def __len__(self) -> int:
        return len(self.paths)


def current_head(cache_dir: Path, fingerprint: str) -> Summary | None:
    """The dataset's frozen-backbone run on cached features trained on the most labels (then the
    most accurate, then the newest), or ``None`` before any."""
    heads = [
        s for s in runs.list_runs(cache_dir) if s.info.fingerprint == fingerprint and uses_features(s.config)
    ]
    return max(heads, key=lambda s: (s.n_train, s.accuracy, s.finished), default=None)


def load_pool(
    data: str | Path,
    pool: str | Path,
    cache_dir: Path,
    split: tuple[float, float, int] = DEFAULT_SPLIT,
    progress: bool = False,
    at_least: int = 1,
    cold: tuple[str, int | None] = (ORIGINAL_BACKBONE, None),
) -> Pool:
    """The pool beside dataset ``data``: scanned, featurised, scored by the current head, and
    cleared of unreadable files and near-copies of the dataset's images. ``split`` is the
    holdout's when no run says otherwise (a run's own split wins: its holdout is the one scored);
    ``cold`` the backbone and image size (None: the backbone's for the images) at the cold start.

    Raises:
        UserError: a folder that is missing, or that holds or is inside the dataset; a pool without a readable
            image, or with fewer than ``at_least`` that may be proposed (said before any feature is
            computed when the readable ones are too few); a pool that is mostly copies of the holdout.
    """
    dataset = scan(data, cache_dir, progress=progress)
    images = scan_unlabelled(pool, cache_dir, progress=progress)
    if images.root.is_relative_to(dataset.root) or dataset.root.is_relative_to(images.root):
        raise UserError(
            f"the pool {images.root} and the dataset {dataset.root} overlap (one holds the other); "
            "give a folder of unlabelled images apart from the dataset"
        )
    if not len(images):
        bad = f" ({counted(len(images.unreadable), 'unreadable file')})" if images.unreadable else ""
        raise UserError(f"the pool {images.root} holds no readable image{bad}; nothing to choose from")
    _refuse_small(images, len(images), at_least)
    head = current_head(cache_dir, dataset.fingerprint)
    config = head.config if head else _cold_config(dataset, split, *cold)
    known = np.asarray(run_inputs(config, dataset, cache_dir).array)
    backend = config.features or "eager-fp32"  # as run_inputs: runs from before backends used eager fp32
    features = np.asarray(
        cached_features(images, config.backbone, config.image_size, cache_dir, backend).array
    )
    copied = _copies(dataset, images, known, features, int(config.image_size), cache_dir)
    holdout = make_splits(dataset.labels, dataset.classes, *config.split).holdout
    _refuse_holdout(images, copied, holdout)
    kept = np.flatnonzero(copied < 0)
    _refuse_small(images, len(kept), at_least)
    return Pool(
        root=images.root,
        paths=tuple(images.paths[i] for i in kept),
        features=features[kept],
        probs=_probs(cache_dir, head, features[kept]),
        labelled=known[np.setdiff1d(np.arange(len(dataset)), holdout)],
        classes=dataset.classes,
        excluded=_excluded(dataset, images, copied, holdout),
        head_run=head.run_id if head else None,
        backbone=config.backbone,
        image_size=int(config.image_size),
    )


def _cold_config(
    dataset: Dataset, split: tuple[float, float, int], backbone: str, image_size: int | None
) -> RunConfig:
    """What a first run on the dataset would use: its features are the ones to rank by."""
    first = dataclasses.replace(
        default_config(str(dataset.root), Split(*split)), backbone=backbone, image_size=image_size
    )
    return resolve(first, dataset.median_side)


def _refuse_small(images: Dataset, usable: int, wanted: int) -> None:
    """Raises UserError when the batch is larger than what the pool can offer."""
    if wanted > usable:
        left = len(images) - usable + len(images.unreadable)
        out = f" ({left} left out: unreadable, or copies of the dataset's images)" if left else ""
        raise UserError(
            f"a batch of {wanted} is larger than the pool: {usable} of the images in {images.root} "
            f"can be proposed{out}"
        )


def _copies(
    dataset: Dataset, images: Dataset, known: np.ndarray, features: np.ndarray, size: int, cache_dir: Path
) -> np.ndarray:
    """For each pool image (``features``), the dataset image (``known``: every image's features)
    it is a near-copy of, or -1."""
    pool_pixels, data_pixels = image_array(images, size, cache_dir), image_array(dataset, size, cache_dir)
    pool_hashes = perceptual_hashes(pool_pixels, np.arange(len(images)))
    data_hashes = perceptual_hashes(data_pixels, np.arange(len(dataset)))
    return copies_of(features, pool_hashes, known, data_hashes)


def _refuse_holdout(images: Dataset, copied: np.ndarray, holdout: np.ndarray) -> None:
    """Raises UserError when most of the pool copies holdout images."""
    in_holdout = int(np.isin(copied, holdout).sum())
    if in_holdout and in_holdout >= HOLDOUT_SHARE_REFUSED * len(images):
        raise UserError(
            f"the pool {images.root} is the dataset's holdout: {in_holdout} of its {len(images)} images "
            "are copies of holdout images; give a folder of images not labelled yet"
        )


def _excluded(
    dataset: Dataset, images: Dataset, copied: np.ndarray, holdout: np.ndarray
) -> tuple[Excluded, ...]:
    """The unreadable files and the near-copies, with the reason, by path."""
    held = set(holdout.tolist())
    left_out = [
        Excluded(str(images.root / path), f"unreadable: {reason}") for path, reason in images.unreadable
    ]
    for i in np.flatnonzero(copied >= 0):
        other = int(copied[i])
        why = (
            f"near-copy of holdout image {dataset.paths[other]}: training on it would leak the holdout"
            if other in held
            else f"near-copy of labelled image {dataset.paths[other]}: labelling it again adds nothing"
        )
        left_out.append(Excluded(str(images.root / images.paths[i]), why))
    return tuple(sorted(left_out, key=lambda e: e.path))


def _probs(cache_dir: Path, head: Summary | None, features: np.ndarray) -> np.ndarray | None:
    """The current head's class probabilities on the pool's features; ``None`` at the cold start."""
    if head is None:
        return None
    model = runs.load(cache_dir, head.run_id).model()
    return predict_probs(model.head, features)
