"""A second, harder test set: a trained run scored on another labelled folder, cached beside it.

daisukelab's book-cover experiment is why: an "easy" test set scored 1.00 where a "difficult" one
(unseen objects, odd angles) scored 0.35. The fixed holdout says how a run does on images like its
training images; a folder chosen by the user says how it does on what it will meet.

Classes are matched by folder name. Images of a class the run does not know cannot be scored;
they are counted and named, never dropped silently. Results are cached under
``cache/testsets/<run_id>/<fingerprint>.{json,csv}`` (a complete run's folder is never rewritten)
and keyed by the folder's content, so adding images to the folder scores it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.base.errors import UserError
from core.base.intervals import wilson
from core.base.paths import read_json, write_json
from core.data.datasets import scan
from core.data.images import image_array
from core.models.inference import predict_probs
from core.store import runs
from core.store.evaluate import summarize
from core.store.record import Predictions, Scores, Summary, read_predictions, write_predictions
from core.store.tables import experiment_label, percent, plain_experiment, slice_words


@dataclass(frozen=True)
class TestSet:
    """A run's scores and predictions on another labelled folder."""

    run_id: str
    data: str
    fingerprint: str
    classes: tuple[str, ...]  # the run's classes, which the predictions' labels index
    unreadable: int
    unknown: dict[str, int]  # classes the run does not know, with their images (not scored)
    scores: Scores

    @property
    def name(self) -> str:
        return Path(self.data).name

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "data": self.data,
            "fingerprint": self.fingerprint,
            "unreadable": self.unreadable,
            "unknown_classes": self.unknown,
            **self.scores.to_dict(),
        }

    @classmethod
    def from_dict(cls, record: dict, classes: tuple[str, ...]) -> TestSet:
        return cls(
            record["run_id"],
            record["data"],
            record["fingerprint"],
            classes,
            record["unreadable"],
            dict(record["unknown_classes"]),
            Scores.from_dict(record),
        )


def _files(cache_dir: Path, rid: str, fingerprint: str) -> tuple[Path, Path]:
    folder = cache_dir / "testsets" / rid
    return folder / f"{fingerprint}.json", folder / f"{fingerprint}.csv"


def score(cache_dir: Path, rid: str, data: str | Path, show_progress: bool = False) -> TestSet:
    """Run ``rid`` on the labelled folder ``data`` (classes matched by name), from the cache or
    computed once.

    Raises:
        UserError: the run or the folder is missing, or no class of the folder is the run's.
    """
    run = runs.load(cache_dir, rid)
    classes = run.summary.classes
    dataset = scan(data, cache_dir, progress=show_progress)
    summary_file, predictions_file = _files(cache_dir, rid, dataset.fingerprint)
    if summary_file.exists() and predictions_file.exists():
        return TestSet.from_dict(read_json(summary_file), classes)
    known = np.array([dataset.classes[label] in classes for label in dataset.labels], dtype=bool)
    counts = dataset.counts()
    unknown = {name: counts[name] for name in dataset.classes if name not in classes}
    if not known.any():
        raise UserError(
            f"{dataset.root}: none of its classes ({', '.join(dataset.classes)}) is among the run's "
            f"({', '.join(classes)}); class folders are matched by name"
        )
    index = np.flatnonzero(known)
    labels = np.array([classes.index(dataset.classes[label]) for label in dataset.labels[index]])
    images = image_array(dataset, run.summary.config.image_size, cache_dir)
    probs = predict_probs(run.model(), images[index])
    predictions = Predictions(classes, index, tuple(dataset.paths[i] for i in index), labels, probs)
    result = TestSet(
        rid,
        str(dataset.root),
        dataset.fingerprint,
        classes,
        len(dataset.unreadable),
        unknown,
        summarize(probs, labels, classes),
    )
    write_predictions(predictions_file, predictions)
    write_json(summary_file, result.to_dict())
    return result


def predictions(cache_dir: Path, test_set: TestSet) -> Predictions:
    """The per-image predictions of a scored test set (image_index into its folder's images)."""
    return read_predictions(
        _files(cache_dir, test_set.run_id, test_set.fingerprint)[1], test_set.classes, test_set.scores.n
    )


def scored(cache_dir: Path, rid: str) -> list[TestSet]:
    """The test sets a run has been scored on, by folder name."""
    classes = runs.load(cache_dir, rid).summary.classes
    folder = cache_dir / "testsets" / rid
    found = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            found.append(TestSet.from_dict(read_json(path), classes))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged cache entry is scored again when asked for
    return sorted(found, key=lambda t: t.name)


SCORED_COLUMNS = (
    "training data", "seed", "experiment", "holdout accuracy", "test set", "test accuracy",
    "right and over 80% sure", "images", "not scored",
)  # fmt: skip


def scored_runs(cache_dir: Path, summaries: Iterable[Summary]) -> list[tuple[Summary, TestSet]]:
    """Every test set each run was scored on, read once for :func:`scored_frame` and
    :func:`unscored_classes`."""
    return [(summary, found) for summary in summaries for found in scored(cache_dir, summary.run_id)]


def scored_frame(pairs: list[tuple[Summary, TestSet]], technical: bool = False) -> pd.DataFrame:
    """A row per run and test set beside its holdout accuracy, in percent, each share with the
    95% Wilson interval of the images it rests on, and the classes left unscored: the Run
    page's table. The experiment in words, or by its label when ``technical``."""
    rows = []
    for summary, found in pairs:
        n, held = found.scores.n, summary.n_holdout
        config = summary.config
        rows.append(
            (
                slice_words(config.slice, summary.n_train / len(summary.classes)),
                config.seed,
                experiment_label(config) if technical else plain_experiment(config),
                percent(wilson(summary.accuracy * held, held)),
                found.name,
                percent(wilson(found.scores.accuracy * n, n)),
                percent(wilson(found.scores.at(0.8).threshold_accuracy * n, n)),
                n,
                ", ".join(f"{c} ({k})" for c, k in found.unknown.items()),
            )
        )
    return pd.DataFrame(rows, columns=list(SCORED_COLUMNS))


def unscored_classes(pairs: list[tuple[Summary, TestSet]]) -> str | None:
    """The first test set with classes the runs do not know, said in words; None if none has."""
    for _, found in pairs:
        if found.unknown:
            return (
                f"{found.name}: class(es) {', '.join(found.unknown)} are not among the runs' classes; "
                "their images were not scored."
            )
    return None
