"""Fixed holdout and validation sets, and nested training slices.

Per dataset, one stratified holdout and one stratified validation set are drawn with the
split seed and never change with the slice or with any training seed: every run on a dataset
is scored on the same holdout images, and even a 1-image-per-class run gets validation curves.
What is left is the training pool. For a sample seed, each class's pool is shuffled once and
every slice is a prefix of that order, so 1/class is inside 3/class, inside 5%, ... inside 100%.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from core.errors import UserError

MIN_PER_CLASS = 3  # one holdout, one validation and one training image
HOLDOUT_SHARE = 0.1  # the original experiment's 10% holdout
VAL_SHARE = 0.1

# The original experiment's slices: 1 and 3 images per class, then 5% ... 100% of the pool.
ORIGINAL_SLICES = (
    "1/class",
    "3/class",
    "5%",
    "10%",
    "20%",
    "30%",
    "40%",
    "50%",
    "60%",
    "70%",
    "80%",
    "90%",
    "100%",
)


@dataclass(frozen=True)
class SliceSpec:
    """How many training images per class: a count (``3/class``) or a share (``5%``)."""

    per_class: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> SliceSpec:
        """Parse ``N/class`` or ``P%``.

        Raises:
            UserError: the text is neither form, or the number is out of range.
        """
        text = text.strip().lower().replace(" ", "")
        if match := re.fullmatch(r"(\d+)/class", text):
            count = int(match.group(1))
            if count < 1:
                raise UserError(f"slice '{text}': the count per class must be at least 1")
            return cls(per_class=count)
        if match := re.fullmatch(r"(\d+(?:\.\d+)?)%", text):
            share = float(match.group(1))
            if not 0 < share <= 100:
                raise UserError(f"slice '{text}': the share must be in (0, 100]")
            return cls(percent=share)
        raise UserError(f"slice '{text}' not understood; use N/class (e.g. 3/class) or P% (e.g. 5%)")

    def __str__(self) -> str:
        if self.per_class is not None:
            return f"{self.per_class}/class"
        return f"{self.percent:g}%"

    def count(self, pool_size: int) -> int:
        """Images to take from a class whose training pool holds ``pool_size`` images."""
        if self.per_class is not None:
            return self.per_class
        return max(1, round(pool_size * self.percent / 100))

    def sort_key(self) -> tuple[int, float]:
        return (0, self.per_class) if self.per_class is not None else (1, self.percent)


@dataclass(frozen=True)
class Splits:
    """Indices into a dataset: the fixed holdout and validation sets and the per-class pools."""

    holdout: np.ndarray
    val: np.ndarray
    pools: tuple[np.ndarray, ...]  # per class, in file order

    def pool_size(self) -> int:
        return int(sum(len(pool) for pool in self.pools))

    def slice_indices(self, spec: SliceSpec, sample_seed: int, classes: tuple[str, ...]) -> np.ndarray:
        """The training indices of one slice; nested across slices for one sample seed.

        Raises:
            UserError: a per-class count exceeds a class's training pool.
        """
        chosen = []
        for label, pool in enumerate(self.pools):
            wanted = spec.count(len(pool))
            if wanted > len(pool):
                raise UserError(
                    f"slice {spec} needs {wanted} training images of class '{classes[label]}' "
                    f"but its training pool has {len(pool)}"
                )
            order = np.random.default_rng([sample_seed, label]).permutation(pool)
            chosen.append(order[:wanted])
        return np.sort(np.concatenate(chosen))


def make_splits(
    labels: np.ndarray,
    classes: tuple[str, ...],
    holdout: float = HOLDOUT_SHARE,
    val: float = VAL_SHARE,
    seed: int = 0,
) -> Splits:
    """Draw the stratified holdout and validation sets; the rest of each class is its pool.

    Raises:
        UserError: a class has fewer than 3 images, or the shares leave no training pool.
    """
    if not (0 < holdout < 1 and 0 < val < 1 and holdout + val < 1):
        raise UserError(
            f"--holdout ({holdout:g}) and --val ({val:g}) are shares of each class: "
            "each must be between 0 and 1, and together below 1"
        )
    if seed < 0:
        raise UserError(f"--split-seed must be 0 or more, not {seed}")
    held, validation, pools = [], [], []
    for label, name in enumerate(classes):
        members = np.flatnonzero(labels == label)
        if len(members) < MIN_PER_CLASS:
            raise UserError(
                f"class '{name}' has {len(members)} readable image(s); it needs at least "
                f"{MIN_PER_CLASS} (one each for holdout, validation and training)"
            )
        order = np.random.default_rng([seed, label]).permutation(members)
        n_hold = max(1, round(len(members) * holdout))
        n_val = max(1, round(len(members) * val))
        n_hold, n_val = _leave_one(len(members), n_hold, n_val)
        held.append(order[:n_hold])
        validation.append(order[n_hold : n_hold + n_val])
        pools.append(np.sort(order[n_hold + n_val :]))
    return Splits(
        holdout=np.sort(np.concatenate(held)), val=np.sort(np.concatenate(validation)), pools=tuple(pools)
    )


def _leave_one(total: int, n_hold: int, n_val: int) -> tuple[int, int]:
    """Shrink holdout and validation counts (validation first) so training keeps an image."""
    while n_hold + n_val > total - 1:
        if n_val > 1:
            n_val -= 1
        else:
            n_hold -= 1
    return n_hold, n_val


def slice_sizes(
    labels: np.ndarray,
    classes: tuple[str, ...],
    slices: list[str] | tuple[str, ...],
    holdout: float = HOLDOUT_SHARE,
    val: float = VAL_SHARE,
    split_seed: int = 0,
    sample_seed: int = 0,
) -> list[dict]:
    """Images in each fixed set and in each slice, or why a slice cannot be drawn, as rows
    ``{"set", "images", "note"}`` (``note`` is empty unless the slice is impossible).

    Raises:
        UserError: the dataset cannot be split at all (a class with too few images).
    """
    splits = make_splits(labels, classes, holdout, val, split_seed)
    rows = [
        {"set": "holdout (fixed)", "images": len(splits.holdout), "note": ""},
        {"set": "validation (fixed)", "images": len(splits.val), "note": ""},
        {"set": "training pool", "images": splits.pool_size(), "note": ""},
    ]
    for text in slices:
        try:
            count = len(splits.slice_indices(SliceSpec.parse(text), sample_seed, classes))
            rows.append({"set": f"slice {text}", "images": count, "note": ""})
        except UserError as error:
            rows.append({"set": f"slice {text}", "images": None, "note": str(error)})
    return rows
