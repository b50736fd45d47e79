"""What determines a run: its configuration, the defaults that fill it in, and its cache key.

A :class:`RunConfig` is what a user asks for (a page, the CLI, a sweep); :func:`resolve` fills
every default in and validates it, so two requests for the same training get the same
:func:`run_id` and share one folder on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from core.base.errors import UserError, check_choice
from core.data.augment import check_policy
from core.data.splits import HOLDOUT_SHARE, ORIGINAL_SLICES, VAL_SHARE, SliceSpec
from core.models.backbones import get_spec
from core.models.feature_backends import default_backend

ENGINE_VERSION = 1  # bump when a change alters what a configuration trains to
MODES = ("frozen", "finetune", "scratch")
# Defaults per training path. A linear head on cached features takes large batches and a high
# learning rate (measured on the default dataset: as accurate as batch 32 and 7x faster at
# 100%, and as accurate as scikit-learn's logistic regression on the same features). Paths
# through the network cost a backbone pass per image on a CPU: smaller batches, fewer epochs.
#
# A head on cached features is fitted to convergence by full-batch L-BFGS (core.engine.head_solver):
# "epochs" are rounds of its iterations (at most), "lr" its step scale, and the batch size is not
# used. AdamW minibatches (``solver="adamw"``) were the default before: their runs keep their keys.
DEFAULTS = {
    "features": {"epochs": 60, "batch_size": 256, "lr": 1.0},  # frozen, no augmentation, L-BFGS
    "features-adamw": {"epochs": 20, "batch_size": 256, "lr": 1e-2},
    "frozen": {"epochs": 10, "batch_size": 32, "lr": 1e-2},  # frozen, augmented images
    "finetune": {"epochs": 9, "batch_size": 32, "lr": 1e-3},
    "scratch": {"epochs": 20, "batch_size": 32, "lr": 1e-3},
}
MIN_IMAGE_SIZE = 96  # the smallest size chosen by default (a user may ask for down to 32)
MAX_IMAGE_SIZE = 1024  # beyond this the decoded-image cache of a dataset runs to terabytes
ORIGINAL_BACKBONE = "efficientnet_lite0"
ORIGINAL_SEEDS = (1, 2, 3)
# a learning curve varies which images are labelled (sample seeds) and keeps the training seed
CURVE_SAMPLE_SEEDS = (1, 2, 3)
CURVE_SEEDS = (1,)
SOLVERS = ("lbfgs", "adamw")  # how a head on cached features is trained


class Split(NamedTuple):
    """Which images are the fixed holdout and validation sets: shares of each class, and a seed."""

    holdout: float = HOLDOUT_SHARE
    val: float = VAL_SHARE
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result; ``None`` fields take defaults in :func:`resolve`."""

    data: str
    backbone: str
    mode: str
    slice: str
    aug: str = "none"
    seed: int = 0
    sample_seed: int | None = None  # which images the slice holds; defaults to ``seed``
    epochs: int | None = None
    image_size: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    holdout: float = HOLDOUT_SHARE
    val: float = VAL_SHARE
    split_seed: int = 0
    features: str | None = None  # the backend that computes cached features (core.models.feature_backends)
    solver: str | None = None  # a head on cached features: "lbfgs" (default) or "adamw"; else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def split(self) -> Split:
        """Which images its holdout and validation sets hold (its shares and split seed)."""
        return Split(self.holdout, self.val, self.split_seed)

    @classmethod
    def from_dict(cls, record: dict) -> RunConfig:
        """A configuration as written by :meth:`to_dict`; keys this version does not know are
        ignored, so a record from a newer version still reads."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


def uses_features(config: RunConfig) -> bool:
    """Frozen backbone and no augmentation: the head trains on cached features."""
    return config.mode == "frozen" and config.aug == "none"


def default_image_size(backbone: str, median_side: int) -> int:
    """The backbone's native size, but no larger than the images need: never upscale past the
    dataset's median side (rounded up to 32), and never below 96 px."""
    native = get_spec(backbone).default_size
    needed = -(-median_side // 32) * 32
    return min(native, max(MIN_IMAGE_SIZE, needed))


def resolve(config: RunConfig, median_side: int) -> RunConfig:
    """Validate ``config`` and fill in every default, so equal runs get equal keys.

    Raises:
        UserError: an unknown mode, backbone, policy or slice, a mode the backbone cannot do,
            or a hyper-parameter out of range (the message names the flag).
    """
    check_choice("mode", config.mode, MODES)
    spec = get_spec(config.backbone)
    if config.mode != "scratch" and spec.weights == "none":
        raise UserError(f"backbone '{spec.name}' has no pretrained weights; use --mode scratch")
    check_policy(config.aug)
    solver = _solver(config)
    defaults = DEFAULTS[
        config.mode if solver is None else "features" if solver == "lbfgs" else "features-adamw"
    ]
    resolved = dataclasses.replace(
        config,
        data=str(Path(config.data).expanduser().resolve()),
        slice=str(SliceSpec.parse(config.slice)),
        sample_seed=config.seed if config.sample_seed is None else config.sample_seed,
        # None is the default; 0 is a value, checked below (it once silently meant the default)
        epochs=defaults["epochs"] if config.epochs is None else config.epochs,
        batch_size=defaults["batch_size"] if config.batch_size is None else config.batch_size,
        lr=defaults["lr"] if config.lr is None else config.lr,
        image_size=(
            default_image_size(config.backbone, median_side)
            if config.image_size is None
            else config.image_size
        ),
        features=(config.features or default_backend()) if uses_features(config) else None,
        solver=solver,
    )
    _check_ranges(resolved)
    return resolved


def _solver(config: RunConfig) -> str | None:
    """The head's solver: L-BFGS unless asked otherwise, for a head on cached features only."""
    if config.solver is not None:
        check_choice("solver", config.solver, SOLVERS)
    if not uses_features(config):
        if config.solver is not None:
            raise UserError(
                f"--solver {config.solver} applies to a head on cached features only "
                "(--mode frozen with --aug none)"
            )
        return None
    return config.solver or "lbfgs"


def _check_ranges(config: RunConfig) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < config.lr <= 10:
        raise UserError(f"--lr must be a positive learning rate (at most 10), not {config.lr:g}")
    if config.seed < 0 or config.sample_seed < 0:
        raise UserError(f"seeds must be 0 or more, not {min(config.seed, config.sample_seed)}")
    if config.mode == "finetune" and config.epochs < 2:
        raise UserError("--mode finetune needs at least 2 epochs: the head first, then the top layers")
    if not 32 <= config.image_size <= MAX_IMAGE_SIZE:
        raise UserError(
            f"--image-size must be between 32 and {MAX_IMAGE_SIZE} pixels, not {config.image_size}"
        )


def run_id(config: RunConfig, fingerprint: str) -> str:
    """The cache key: a hash of the resolved configuration (minus the folder path, which does
    not change the result) and the dataset's content fingerprint.

    The feature backend is recorded with the run, and left out of its key when it computes in
    fp32: those agree with eager fp32 within :data:`core.models.feature_backends.TOLERANCE`, and runs
    cached before backends were recorded (all eager fp32) stay cache hits. A half-precision
    backend agrees only within ``HALF_TOLERANCE``, so its runs are keyed apart: a GPU's fp16
    run in a shared cache is never what a request for fp32 features gets. The solver is left
    out for AdamW (the only one before solvers were recorded), so those runs stay cache hits too.
    """
    key = {**config.to_dict(), "data": fingerprint, "engine": ENGINE_VERSION}
    if key["features"] is None or key["features"].endswith("-fp32"):
        del key["features"]
    if key["solver"] in (None, "adamw"):
        del key["solver"]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """Seeds typed as ``1,2,3`` (spaces allowed), in order, without repeats.

    Raises:
        UserError: a part is not a whole number, or a seed is negative.
    """
    try:
        seeds = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise UserError(f"{flag} must be whole numbers separated by commas, not '{text}'") from None
    if any(seed < 0 for seed in seeds):
        raise UserError(f"{flag}: seeds must be 0 or more, not '{text}'")
    return list(dict.fromkeys(seeds))


def parse_slices(text: str) -> list[str]:
    """Slices typed as ``1/class, 3/class, 5%`` in their canonical spelling.

    Raises:
        UserError: a part is not a slice (the message names it).
    """
    return list(dict.fromkeys(str(SliceSpec.parse(part)) for part in text.split(",") if part.strip()))


def grid(
    base: RunConfig,
    slices: list[str] | tuple[str, ...],
    seeds: list[int] | tuple[int, ...],
    sample_seeds: list[int] | tuple[int, ...] | None = None,
) -> list[RunConfig]:
    """Every slice for every seed; with ``sample_seeds``, every (sample seed, training seed)
    pair, so that which images were labelled and how the network started vary separately.

    The whole pool (``100%``) is the same images whatever the sample seed, so it is trained with
    the first sample seed only: a curve sweep trained it three times and got the same accuracy
    three times."""
    if sample_seeds is None:
        pairs = whole = [(seed, None) for seed in seeds]
    else:
        pairs = [(seed, sample) for sample in sample_seeds for seed in seeds]
        whole = [(seed, sample_seeds[0]) for seed in seeds]
    return [
        dataclasses.replace(base, slice=text, seed=seed, sample_seed=sample)
        for text in slices
        for seed, sample in (whole if SliceSpec.parse(text).percent == 100 else pairs)
    ]


DEFAULT_SPLIT = Split()


def default_config(data: str, split: Split = DEFAULT_SPLIT) -> RunConfig:
    """What a dataset is first trained with: a head on frozen EfficientNet-Lite0 features."""
    return RunConfig(
        data=data,
        backbone=ORIGINAL_BACKBONE,
        mode="frozen",
        slice="1/class",
        holdout=split.holdout,
        val=split.val,
        split_seed=split.seed,
    )


def departures(config: RunConfig) -> int:
    """How many of an experiment's kinds of choice (backbone, mode, augmentation, head solver)
    differ from what a dataset is first trained with (:func:`default_config`): where two
    experiments are measured alike, the usual one is shown first, not the one whose label sorts
    first."""
    usual = default_config(config.data, config.split)
    return sum(getattr(config, name) != getattr(usual, name) for name in ("backbone", "mode", "aug")) + (
        _solver(config) != _solver(usual)
    )


def original_grid(data: str, split: Split = DEFAULT_SPLIT) -> list[RunConfig]:
    """The original experiment: frozen EfficientNet-Lite0, 1/class, 3/class, 5% ... 100%,
    seeds 1 to 3 (39 runs)."""
    return grid(default_config(data, split), ORIGINAL_SLICES, ORIGINAL_SEEDS)
