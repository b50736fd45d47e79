"""The typed record of a run: what it was, what it scored, how it trained, what it predicted.

Each file of a run folder (see :mod:`core.store.runs` for the layout) has one type here and one
reader and writer beside it, so nothing else in the code reads a run's files by string key:

=====================  ====================  ==============================================
file                   type                  written
=====================  ====================  ==============================================
``config.json``        :class:`RunInfo`      when training starts
``metrics.jsonl``      :class:`Metrics`      appended while training (per step, per epoch)
``progress.json``      :class:`Progress`     while training, every half second
``predictions.csv``    :class:`Predictions`  after training, one row per holdout image
``summary.json``       :class:`Summary`      last, with the headline numbers
=====================  ====================  ==============================================

The JSON layouts are those written since the first version, so old caches still read.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.base.errors import RunDamaged
from core.base.intervals import Estimate, wilson
from core.base.paths import read_json, write_atomic, write_json
from core.base.words import counted
from core.store.config import RunConfig


@dataclass(frozen=True)
class RunInfo:
    """Which run this is: its id, resolved configuration, classes and dataset fingerprint."""

    run_id: str
    config: RunConfig
    classes: tuple[str, ...]
    fingerprint: str

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "config": self.config.to_dict(),
            "classes": list(self.classes),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, record: dict) -> RunInfo:
        return cls(
            run_id=record["run_id"],
            config=RunConfig.from_dict(record["config"]),
            classes=tuple(record["classes"]),
            fingerprint=record["fingerprint"],
        )


@dataclass(frozen=True)
class ThresholdScore:
    """The scores at one confidence threshold t (see :mod:`core.store.evaluate` for the two readings)."""

    threshold: float
    threshold_accuracy: float  # share of images with P(true class) > t
    selective_accuracy: float  # accuracy on the images whose top probability is >= t
    coverage: float  # share of images whose top probability is >= t


@dataclass(frozen=True)
class Scores:
    """Every headline number of a set of predictions against labels."""

    n: int
    accuracy: float  # argmax accuracy
    thresholds: tuple[ThresholdScore, ...]
    per_class_accuracy: dict[str, float | None] = field(hash=False)  # None: no image of the class
    confusion: tuple[tuple[int, ...], ...]  # rows true class, columns predicted class

    def class_accuracies(self) -> dict[str, Estimate]:
        """Each class's accuracy (its recall) with the 95% Wilson interval of its few holdout
        images, from the confusion matrix: 2 of 3 right is not the same news as 200 of 300.
        Classes with no image are left out."""
        classes = list(self.per_class_accuracy)
        return {
            name: wilson(row[i], sum(row))
            for i, (name, row) in enumerate(zip(classes, self.confusion, strict=True))
            if sum(row)
        }

    def at(self, threshold: float) -> ThresholdScore:
        """The scores at a threshold that was recorded (0.5 and 0.8 for every run)."""
        for score in self.thresholds:
            if abs(score.threshold - threshold) < 1e-9:
                return score
        raise KeyError(f"no scores recorded at threshold {threshold:g}")

    def to_dict(self) -> dict:
        keys = [f"{s.threshold:g}" for s in self.thresholds]
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "threshold_accuracy": {
                k: s.threshold_accuracy for k, s in zip(keys, self.thresholds, strict=True)
            },
            "selective_accuracy": {
                k: s.selective_accuracy for k, s in zip(keys, self.thresholds, strict=True)
            },
            "coverage": {k: s.coverage for k, s in zip(keys, self.thresholds, strict=True)},
            "per_class_accuracy": dict(self.per_class_accuracy),
            "confusion": [list(row) for row in self.confusion],
        }

    @classmethod
    def from_dict(cls, record: dict, accuracy_key: str = "accuracy") -> Scores:
        thresholds = tuple(
            ThresholdScore(
                float(key),
                record["threshold_accuracy"][key],
                record["selective_accuracy"][key],
                record["coverage"][key],
            )
            for key in sorted(record["threshold_accuracy"], key=float)
        )
        return cls(
            n=record["n"],
            accuracy=record[accuracy_key],
            thresholds=thresholds,
            per_class_accuracy=dict(record["per_class_accuracy"]),
            confusion=tuple(tuple(row) for row in record["confusion"]),
        )


@dataclass(frozen=True)
class Summary:
    """A finished run: what it was, the sizes of its sets, its holdout scores, its cost."""

    info: RunInfo
    n_train: int
    n_val: int
    n_holdout: int
    holdout: Scores
    train_seconds: float
    finished: float  # seconds since the epoch
    device: str
    features_backend: str | None = None  # what computed the features (core.models.feature_backends)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def config(self) -> RunConfig:
        return self.info.config

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def accuracy(self) -> float:
        """Holdout argmax accuracy."""
        return self.holdout.accuracy

    def to_dict(self) -> dict:
        """The ``summary.json`` layout, which is also what ``python -m core run --json`` prints."""
        scores = self.holdout.to_dict()
        return {
            **self.info.to_dict(),
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_holdout": self.n_holdout,
            "holdout_accuracy": scores.pop("accuracy"),
            **scores,
            "train_seconds": self.train_seconds,
            "finished": self.finished,
            "device": self.device,
            "features_backend": self.features_backend,
        }

    @classmethod
    def from_dict(cls, record: dict) -> Summary:
        return cls(
            info=RunInfo.from_dict(record),
            n_train=record["n_train"],
            n_val=record["n_val"],
            n_holdout=record["n_holdout"],
            holdout=Scores.from_dict(record, accuracy_key="holdout_accuracy"),
            train_seconds=record["train_seconds"],
            finished=record["finished"],
            device=record.get("device", "cpu"),
            features_backend=record.get("features_backend"),
        )


@dataclass(frozen=True)
class Predictions:
    """Class probabilities of a run's holdout images, in dataset order."""

    classes: tuple[str, ...]
    image_index: np.ndarray  # index into the dataset (and its cached image array)
    paths: tuple[str, ...]  # relative to the dataset folder
    labels: np.ndarray  # true class indices
    probs: np.ndarray  # N x C

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def p_true(self) -> np.ndarray:
        return self.probs[np.arange(len(self.labels)), self.labels]

    @property
    def p_max(self) -> np.ndarray:
        return self.probs.max(1)

    def without(self, paths: Collection[str]) -> Predictions:
        """The same predictions less the images at ``paths`` (an audited holdout variant)."""
        keep = np.array([p not in paths for p in self.paths], dtype=bool)
        return Predictions(
            self.classes,
            self.image_index[keep],
            tuple(p for p, k in zip(self.paths, keep, strict=True) if k),
            self.labels[keep],
            self.probs[keep],
        )

    def frame(self) -> pd.DataFrame:
        """One row per image: ``image_index, path, label, true, pred, p_true, p_max`` and a
        ``p:<class>`` column per class (the ``predictions.csv`` layout)."""
        frame = pd.DataFrame(
            {
                "image_index": self.image_index,
                "path": list(self.paths),
                "label": self.labels,
                "true": [self.classes[i] for i in self.labels],
                "pred": [self.classes[i] for i in self.predicted],
                "p_true": self.p_true,
                "p_max": self.p_max,
            }
        )
        for k, name in enumerate(self.classes):
            frame[f"p:{name}"] = self.probs[:, k]
        return frame


def write_predictions(path: Path, predictions: Predictions) -> None:
    write_atomic(path, predictions.frame().to_csv(index=False).encode())


def read_predictions(path: Path, classes: tuple[str, ...], expected_rows: int) -> Predictions:
    """Read ``predictions.csv`` and check that it is whole.

    Raises:
        RunDamaged: the file is missing, unreadable, or has other rows or columns than the run.
    """
    run = path.parent.name
    try:
        frame = pd.read_csv(path)
        probs = frame[[f"p:{name}" for name in classes]].to_numpy(dtype=np.float64)
        labels = frame["label"].to_numpy(dtype=np.int64)
        index = frame["image_index"].to_numpy(dtype=np.int64)
    except FileNotFoundError:
        raise RunDamaged(f"run {run} has lost its predictions.csv") from None
    except (ValueError, KeyError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise RunDamaged(f"run {run}: predictions.csv is unreadable ({type(error).__name__})") from None
    if len(frame) != expected_rows or np.isnan(probs).any():
        raise RunDamaged(
            f"run {run}: predictions.csv has {counted(len(frame), 'whole row')}, the run "
            f"scored {expected_rows} images (the file was cut short or edited)"
        )
    return Predictions(
        classes=classes, image_index=index, paths=tuple(frame["path"].astype(str)), labels=labels, probs=probs
    )


@dataclass(frozen=True)
class Metrics:
    """Training curves. ``epochs`` has ``epoch, step, train_loss, train_acc, val_loss, val_acc,
    t`` per epoch; ``steps`` has ``epoch, step, train_loss, train_acc, t`` per optimizer step
    (``t``: seconds since training started)."""

    epochs: pd.DataFrame
    steps: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.epochs.empty


EPOCH_COLUMNS = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "t"]
STEP_COLUMNS = ["epoch", "step", "train_loss", "train_acc", "t"]


def metrics_line(kind: str, values: dict) -> str:
    """One line of ``metrics.jsonl`` (``kind``: ``step`` or ``epoch``)."""
    return json.dumps({"kind": kind, **values}) + "\n"


def read_metrics(path: Path) -> Metrics:
    """The curves written so far; readable while the run is still writing them (its last line
    may be half-written and is then left out).

    Raises:
        RunDamaged: a line other than the last is not JSON (the file was damaged).
    """
    records = []
    lines = path.read_text().splitlines() if path.exists() else []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise RunDamaged(f"{path}: line {number} is not JSON (the file was damaged)") from None
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return Metrics(pd.DataFrame(columns=EPOCH_COLUMNS), pd.DataFrame(columns=STEP_COLUMNS))
    pick = {kind: frame[frame["kind"] == kind].reset_index(drop=True) for kind in ("epoch", "step")}
    return Metrics(
        epochs=pick["epoch"].reindex(columns=EPOCH_COLUMNS), steps=pick["step"].reindex(columns=STEP_COLUMNS)
    )


@dataclass(frozen=True)
class Progress:
    """How far a training run has got, for live progress bars."""

    epoch: int  # 0-based
    epochs: int
    step: int
    total_steps: int
    elapsed_s: float
    eta_s: float | None  # seconds left, once a step has been timed

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / max(1, self.total_steps))

    def describe(self) -> str:
        left = f", about {self.eta_s:.0f} s left" if self.eta_s is not None else ""
        return f"epoch {self.epoch + 1}/{self.epochs}, step {self.step}/{self.total_steps}{left}"

    @classmethod
    def measure(cls, epoch: int, epochs: int, step: int, total_steps: int, elapsed_s: float) -> Progress:
        """Progress with the time left extrapolated from the time per step so far."""
        eta = round(elapsed_s / step * (total_steps - step), 1) if step else None
        return cls(epoch, epochs, step, int(total_steps), round(elapsed_s, 2), eta)


def write_progress(path: Path, progress: Progress) -> None:
    write_json(path, progress.__dict__)


@dataclass(frozen=True)
class RunStatus:
    """What a run in training says of itself (``status.json``): its state, the process that
    wrote it, why it failed, and when."""

    state: str
    pid: int
    error: str | None
    time: float


def read_status(path: Path) -> RunStatus | None:
    """The run's status, or ``None`` where there is none yet or it cannot be read (a run killed
    before writing it)."""
    try:
        return RunStatus(**read_json(path))
    except (OSError, ValueError, TypeError):
        return None


def read_progress(path: Path) -> Progress | None:
    """The latest progress, or ``None`` before training has started (or if unreadable)."""
    try:
        return Progress(**read_json(path))
    except (OSError, ValueError, TypeError):
        return None
