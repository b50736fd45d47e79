"""The questions the pages ask of the run table (:func:`core.store.tables.runs_frame`), by name.

Pages filter and group runs (which holdouts, which experiments, which runs share one); they ask
these functions and never read a column by its string, so a renamed column breaks here, under a
test, rather than on a page in front of someone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd


def datasets(frame: pd.DataFrame) -> list[str]:
    """The dataset labels present, sorted: other images or another split under one folder are
    other labels."""
    return sorted(frame["dataset"].unique())


def of_dataset(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    return frame[frame["dataset"] == label]


def of_fingerprint(frame: pd.DataFrame, fingerprint: str) -> pd.DataFrame:
    """The runs trained on the dataset whose images have ``fingerprint``, wherever it lies."""
    return frame[frame["fingerprint"] == fingerprint]


def dataset_label(frame: pd.DataFrame) -> str:
    """The label of the table's (first) dataset."""
    return str(frame["dataset"].iloc[0])


def of_folder(frame: pd.DataFrame, folder: str) -> pd.DataFrame:
    """The runs trained on the dataset folder ``folder`` (as typed, not resolved)."""
    return frame[frame["data"] == folder]


def folder_of(frame: pd.DataFrame, run_id: str | None) -> str | None:
    """The dataset folder run ``run_id`` trained on; None when no such run is in the table."""
    found = frame.loc[frame["run_id"] == run_id, "data"]
    return None if found.empty else str(found.iloc[0])


def folder_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Each dataset folder with runs, and its label."""
    return dict(zip(frame["data"], frame["dataset"], strict=True))


def experiments(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["experiment"].unique())


def of_experiments(frame: pd.DataFrame, picked: Sequence[str]) -> pd.DataFrame:
    return frame[frame["experiment"].isin(picked)]


def run_ids(frame: pd.DataFrame) -> list[str]:
    return list(frame["run_id"])


def first_run(frame: pd.DataFrame) -> str:
    return str(frame["run_id"].iloc[0])


def same_experiment(frame: pd.DataFrame, run_id: str) -> list[str]:
    """The run ids of ``run_id``'s experiment, ``run_id`` included, in the table's order."""
    experiment = frame.loc[frame["run_id"] == run_id, "experiment"].iloc[0]
    return run_ids(frame[frame["experiment"] == experiment])


def by_backbone_and_mode(frame: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """The runs of each backbone and mode (frozen or fine-tuned): where augmentation is compared."""
    for (backbone, mode), runs in frame.groupby(["backbone", "mode"]):
        yield str(backbone), str(mode), runs


def augmentations_vary(frame: pd.DataFrame) -> bool:
    """Whether the runs were trained with more than one augmentation policy."""
    return frame["aug"].nunique() > 1
