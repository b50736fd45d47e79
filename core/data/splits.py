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

from core.base.errors import UserError
from core.base.words import counted

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
# Images per class for learning curves: roughly geometric (each about 1.6x the last), so the
# few-shot bend and the plateau both get points on a log axis.
CURVE_COUNTS = (
    1,
    2,
    3,
    5,
    8,
    13,
    20,
    30,
    50,
    80,
    130,
    200,
    300,
    500,
    800,
    1300,
    2000,
    3000,
    5000,
    8000,
    13000,
)


def curve_slices(pool_sizes: list[int]) -> list[str]:
    """Learning-curve slices for per-class training pools of these sizes: every count of
    :data:`CURVE_COUNTS` that every class can give, then the whole pool (``100%``)."""
    smallest = min(pool_sizes)
    return [f"{n}/class" for n in CURVE_COUNTS if n < smallest] + ["100%"]


@dataclass(frozen=True)
class SliceSpec:
    """How many training images per class: a count (``3/class``), a share (``5%``), or counts
    that differ per class (``Bag=12;Coat=30;*=5``: ``*`` is every class not named), which is
    how a suggested allocation of new labels is trained and checked."""

    per_class: int | None = None
    percent: float | None = None
    counts: tuple[tuple[str, int], ...] = ()  # (class, count); "*" for the rest

    @classmethod
    def parse(cls, text: str) -> SliceSpec:
        """Parse ``N/class``, ``P%`` or ``class=N;class=N;*=N``.

        Raises:
            UserError: the text is none of these, or a number is out of range.
        """
        if "=" in text:
            return cls._parse_counts(text)
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
        raise UserError(
            f"slice '{text}' not understood; use N/class (e.g. 3/class), P% (e.g. 5%) or "
            "per-class counts (e.g. Bag=12;Coat=30;*=5)"
        )

    @classmethod
    def _parse_counts(cls, text: str) -> SliceSpec:
        counts = {}
        for part in (p.strip() for p in text.split(";") if p.strip()):
            name, _, number = part.rpartition("=")
            if not name.strip() or not number.strip().isdigit() or int(number) < 1:
                raise UserError(f"slice '{text}': '{part}' is not class=count with a count of at least 1")
            counts[name.strip()] = int(number)
        rest = counts.pop("*", None)
        ordered = sorted(counts.items()) + ([("*", rest)] if rest is not None else [])
        return cls(counts=tuple(ordered))

    def __str__(self) -> str:
        if self.counts:
            return ";".join(f"{name}={count}" for name, count in self.counts)
        if self.per_class is not None:
            return f"{self.per_class}/class"
        return f"{self.percent:g}%"

    def count(self, name: str, pool_size: int) -> int:
        """Images to take from class ``name``, whose training pool holds ``pool_size`` images.

        Raises:
            UserError: per-class counts that neither name the class nor give ``*``.
        """
        if self.counts:
            given = dict(self.counts)
            if name not in given and "*" not in given:
                raise UserError(f"slice '{self}' gives no count for class '{name}' (add {name}=N or *=N)")
            return given.get(name, given.get("*"))
        if self.per_class is not None:
            return self.per_class
        return max(1, round(pool_size * self.percent / 100))

    def check_classes(self, classes: tuple[str, ...]) -> None:
        """Raises UserError when the slice names a class the dataset does not have."""
        unknown = [name for name, _ in self.counts if name != "*" and name not in classes]
        if unknown:
            raise UserError(
                f"slice '{self}' names class(es) {', '.join(unknown)} that the dataset does not "
                f"have; its classes are {', '.join(classes)}"
            )

    def sort_key(self) -> tuple[int, float]:
        if self.counts:
            return (2, sum(count for _, count in self.counts))
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
        spec.check_classes(classes)
        chosen = []
        for label, pool in enumerate(self.pools):
            wanted = spec.count(classes[label], len(pool))
            if wanted > len(pool):
                raise UserError(
                    f"slice {spec} needs {wanted} training images of class '{classes[label]}' "
                    f"but its training pool has {len(pool)}"
                )
            order = np.random.default_rng([sample_seed, label]).permutation(pool)
            chosen.append(order[:wanted])
        return np.sort(np.concatenate(chosen))


def check_split(holdout: float, val: float, seed: int) -> None:
    """Raises UserError naming the flag when the shares leave no training pool or the seed is
    negative (the CLI checks before it imports the training stack)."""
    if not (0 < holdout < 1 and 0 < val < 1 and holdout + val < 1):
        raise UserError(
            f"--holdout ({holdout:g}) and --val ({val:g}) are shares of each class: "
            "each must be between 0 and 1, and together below 1"
        )
    if seed < 0:
        raise UserError(f"--split-seed must be 0 or more, not {seed}")


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
    check_split(holdout, val, seed)
    held, validation, pools = [], [], []
    for label, name in enumerate(classes):
        members = np.flatnonzero(labels == label)
        if len(members) < MIN_PER_CLASS:
            raise UserError(
                f"class '{name}' has {counted(len(members), 'readable image')}; it needs at least "
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


@dataclass(frozen=True)
class SetSize:
    """A fixed set or a slice, its images, and why it cannot be drawn (empty when it can)."""

    name: str
    images: int | None  # over every class
    note: str = ""
    per_class: str = ""  # "15", or "14 to 16" where classes differ


def _per_class(labels: np.ndarray, indices: np.ndarray, n_classes: int) -> str:
    counts = np.bincount(labels[indices], minlength=n_classes)
    low, high = int(counts.min()), int(counts.max())
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def slice_sizes(
    labels: np.ndarray,
    classes: tuple[str, ...],
    slices: list[str] | tuple[str, ...],
    holdout: float = HOLDOUT_SHARE,
    val: float = VAL_SHARE,
    split_seed: int = 0,
    sample_seed: int = 0,
) -> list[SetSize]:
    """Images in each fixed set and in each slice, or why a slice cannot be drawn (``note``, empty
    unless the slice is impossible).

    Raises:
        UserError: the dataset cannot be split at all (a class with too few images).
    """
    splits = make_splits(labels, classes, holdout, val, split_seed)
    n = len(classes)
    pool = np.concatenate(splits.pools)
    rows = [
        SetSize("holdout (fixed)", len(splits.holdout), per_class=_per_class(labels, splits.holdout, n)),
        SetSize("validation (fixed)", len(splits.val), per_class=_per_class(labels, splits.val, n)),
        SetSize("training pool", splits.pool_size(), per_class=_per_class(labels, pool, n)),
    ]
    for text in slices:
        try:
            drawn = splits.slice_indices(SliceSpec.parse(text), sample_seed, classes)
            rows.append(SetSize(f"slice {text}", len(drawn), per_class=_per_class(labels, drawn, n)))
        except UserError as error:
            rows.append(SetSize(f"slice {text}", None, str(error)))
    return rows
