"""Tables behind the dashboard's charts and the CLI's listings: runs as rows, grouped over seeds,
thresholds at any t.

Plain pandas over typed run summaries and predictions, so the pages only lay things out and
every number they show comes from :mod:`core.evaluate`. Each quantity has one column name
everywhere (the pages, the CLI, the exports): see :data:`COLUMNS`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.config import RunConfig
from core.evaluate import THRESHOLDS, argmax_accuracy, selective, threshold_accuracy
from core.record import Predictions, Summary
from core.splits import HOLDOUT_SHARE, VAL_SHARE, SliceSpec

FILTERS = ("dataset", "slice", "backbone", "mode", "aug", "seed")


def p_true_column(t: float) -> str:
    """The article's reading at t: share of images whose true class gets more than t."""
    return f"P(true)>{t:g}"


def coverage_column(t: float) -> str:
    """Share of images whose top probability is at least t."""
    return f"coverage@{t:g}"


def selective_column(t: float) -> str:
    """Accuracy on the images whose top probability is at least t."""
    return f"selective@{t:g}"


COLUMNS = [
    "run_id",
    "dataset",
    "data",
    "experiment",
    "backbone",
    "mode",
    "aug",
    "slice",
    "slice_order",
    "seed",
    "sample_seed",
    "epochs",
    "image_size",
    "n_train",
    "accuracy",
    *[p_true_column(t) for t in THRESHOLDS],
    coverage_column(THRESHOLDS[-1]),
    "train_seconds",
    "finished",
]


def experiment_label(config: RunConfig) -> str:
    """Everything a run is compared on besides its slice and seeds. Runs that differ in any of
    it (a hyper-parameter too) are different experiments, never averaged together as seeds."""
    return (
        f"{config.backbone} · {config.mode} · aug {config.aug} · {config.epochs} ep · "
        f"{config.image_size} px · bs {config.batch_size} · lr {config.lr:g}"
    )


def dataset_label(config: RunConfig, fingerprint: str) -> str:
    """What a run is scored on: the folder by name and content (the name alone would merge two
    folders of one name, or a folder before and after images were added), and its holdout
    split where it is not the default one. Runs with different labels saw different holdouts."""
    label = f"{Path(config.data).name} · {fingerprint[:6]}"
    split = (config.holdout, config.val, config.split_seed)
    if split != (HOLDOUT_SHARE, VAL_SHARE, 0):
        label += f" · holdout {split[0]:g}, val {split[1]:g}, split seed {split[2]}"
    return label


def run_row(summary: Summary) -> dict:
    """One run as a row of :data:`COLUMNS`."""
    c, scores = summary.config, summary.holdout
    last = scores.at(THRESHOLDS[-1])
    return {
        "run_id": summary.run_id,
        "dataset": dataset_label(c, summary.info.fingerprint),
        "data": c.data,
        "experiment": experiment_label(c),
        "backbone": c.backbone,
        "mode": c.mode,
        "aug": c.aug,
        "slice": c.slice,
        "slice_order": SliceSpec.parse(c.slice).sort_key(),
        "seed": c.seed,
        "sample_seed": c.sample_seed,
        "epochs": c.epochs,
        "image_size": c.image_size,
        "n_train": summary.n_train,
        "accuracy": scores.accuracy,
        **{p_true_column(t): scores.at(t).threshold_accuracy for t in THRESHOLDS},
        coverage_column(last.threshold): last.coverage,
        "train_seconds": summary.train_seconds,
        "finished": summary.finished,
    }


def runs_frame(summaries: list[Summary]) -> pd.DataFrame:
    """One row per run, in the order given, with the columns the pages filter, group and sort on."""
    return pd.DataFrame([run_row(s) for s in summaries], columns=COLUMNS)


def run_label(row) -> str:
    """How a page names one run in a picker: slice, seed, experiment, accuracy and id."""
    return f"{row.slice} · seed {row.seed} · {row.experiment} · acc {row.accuracy:.3f} [{row.run_id}]"


def slice_order(frame: pd.DataFrame) -> list[str]:
    """The slices present, smallest first (1/class, 3/class, 5%, ..., 100%)."""
    ordered = frame.drop_duplicates("slice").sort_values("slice_order")
    return ordered["slice"].tolist()


def holdout_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of holdout accuracy over seeds, per experiment and slice."""
    grouped = frame.groupby(["dataset", "experiment", "slice"], as_index=False).agg(
        accuracy=("accuracy", "mean"),
        spread=("accuracy", "std"),
        seeds=("seed", "nunique"),
        n_train=("n_train", "mean"),
        slice_order=("slice_order", "first"),
    )
    grouped["spread"] = grouped["spread"].fillna(0.0)
    return grouped.sort_values(["slice_order", "accuracy"], ascending=[True, False])


def threshold_table(frame: pd.DataFrame, predictions: dict[str, Predictions], t: float) -> pd.DataFrame:
    """The article's argmax-vs-threshold table, per experiment and slice (means over seeds),
    plus the same at a chosen threshold ``t`` with coverage and selective accuracy.
    ``predictions`` maps the frame's run ids to their holdout predictions."""
    rows = []
    for row in frame.itertuples():
        p = predictions[row.run_id]
        selective_accuracy, coverage = selective(p.probs, p.labels, t)
        rows.append(
            {
                "dataset": row.dataset,
                "experiment": row.experiment,
                "slice": row.slice,
                "slice_order": row.slice_order,
                "accuracy": argmax_accuracy(p.probs, p.labels),
                **{p_true_column(u): threshold_accuracy(p.probs, p.labels, u) for u in (*THRESHOLDS, t)},
                coverage_column(t): coverage,
                selective_column(t): selective_accuracy,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    keys = ["dataset", "experiment", "slice"]
    numbers = {c: (c, "mean") for c in table.columns if c not in (*keys, "slice_order")}
    means = table.groupby(keys, as_index=False).agg(
        **numbers, seeds=("accuracy", "size"), slice_order=("slice_order", "first")
    )
    return means.sort_values(["experiment", "slice_order"]).drop(columns="slice_order")


def cli_table(rows: list[dict]) -> str:
    """Runs as the CLI prints them: rows of :func:`run_row`, with ``cached`` where known."""
    shown = [
        "run_id",
        "backbone",
        "mode",
        "aug",
        "slice",
        "seed",
        "n_train",
        "accuracy",
        *[p_true_column(t) for t in THRESHOLDS],
        coverage_column(THRESHOLDS[-1]),
    ]
    frame = pd.DataFrame(rows)
    columns = [c for c in (*shown, "cached") if c in frame.columns]
    return frame[columns].to_string(index=False, float_format=lambda x: f"{x:.3f}")


def policy_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean holdout accuracy by augmentation policy (rows) and slice (columns, smallest first),
    over the runs given (one dataset and backbone, say): what helps where."""
    grid = frame.pivot_table(index="aug", columns="slice", values="accuracy", aggfunc="mean")
    return grid[[s for s in slice_order(frame) if s in grid.columns]]


def crossover(frame: pd.DataFrame, baseline: str, challenger: str) -> str | None:
    """The smallest slice from which ``challenger``'s mean accuracy beats ``baseline``'s at that
    slice and every larger slice both measured (experiment labels); None if it never does."""
    means = (
        frame[frame["experiment"].isin([baseline, challenger])]
        .pivot_table(index="slice", columns="experiment", values="accuracy", aggfunc="mean")
        .dropna()
    )
    if means.empty or len(means.columns) < 2:
        return None
    ordered = [s for s in slice_order(frame) if s in means.index]
    ahead = [bool(means.loc[s, challenger] > means.loc[s, baseline]) for s in ordered]
    for i, text in enumerate(ordered):
        if all(ahead[i:]):
            return text
    return None
