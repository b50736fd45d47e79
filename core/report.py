"""Tables behind the dashboard's charts: runs as rows, grouped over seeds, thresholds at any t.

Plain pandas over the run summaries and predictions, so the pages only lay things out and
every number a page shows comes from :mod:`core.evaluate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.evaluate import argmax_accuracy, selective, threshold_accuracy
from core.splits import HOLDOUT_SHARE, VAL_SHARE, SliceSpec

FILTERS = ("dataset", "slice", "backbone", "mode", "aug", "seed")


def experiment_label(config: dict) -> str:
    """Everything a run is compared on besides its slice and seeds. Runs that differ in any of
    it (a hyper-parameter too) are different experiments, never averaged together as seeds."""
    return (f"{config['backbone']} · {config['mode']} · aug {config['aug']} · "
            f"{config['epochs']} ep · {config['image_size']} px · bs {config['batch_size']} · "
            f"lr {config['lr']:g}")


def dataset_label(config: dict, fingerprint: str) -> str:
    """What a run is scored on: the folder by name and content (the name alone would merge two
    folders of one name, or a folder before and after images were added), and its holdout
    split where it is not the default one. Runs with different labels saw different holdouts."""
    label = f"{Path(config['data']).name} · {fingerprint[:6]}"
    split = (config["holdout"], config["val"], config["split_seed"])
    if split != (HOLDOUT_SHARE, VAL_SHARE, 0):
        label += f" · holdout {split[0]:g}, val {split[1]:g}, split seed {split[2]}"
    return label


def runs_frame(summaries: list[dict]) -> pd.DataFrame:
    """One row per run, newest first, with the columns the pages filter, group and sort on."""
    rows = []
    for s in summaries:
        c = s["config"]
        rows.append({
            "run_id": s["run_id"], "dataset": dataset_label(c, s["fingerprint"]),
            "data": c["data"],
            "experiment": experiment_label(c), "backbone": c["backbone"], "mode": c["mode"],
            "aug": c["aug"], "slice": c["slice"], "slice_order": SliceSpec.parse(c["slice"]).sort_key(),
            "seed": c["seed"], "sample_seed": c["sample_seed"], "epochs": c["epochs"],
            "image_size": c["image_size"], "n_train": s["n_train"],
            "accuracy": s["holdout_accuracy"],
            "p_true>0.5": s["threshold_accuracy"]["0.5"], "p_true>0.8": s["threshold_accuracy"]["0.8"],
            "coverage@0.8": s["coverage"]["0.8"], "train_seconds": s["train_seconds"],
            "finished": s["finished"],
        })
    columns = ["run_id", "dataset", "data", "experiment", "backbone", "mode", "aug", "slice",
               "slice_order", "seed", "sample_seed", "epochs", "image_size", "n_train", "accuracy",
               "p_true>0.5", "p_true>0.8", "coverage@0.8", "train_seconds", "finished"]
    return pd.DataFrame(rows, columns=columns)


def slice_order(frame: pd.DataFrame) -> list[str]:
    """The slices present, smallest first (1/class, 3/class, 5%, ..., 100%)."""
    ordered = frame.drop_duplicates("slice").sort_values("slice_order")
    return ordered["slice"].tolist()


def holdout_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of holdout accuracy over seeds, per experiment and slice."""
    grouped = frame.groupby(["dataset", "experiment", "slice"], as_index=False).agg(
        accuracy=("accuracy", "mean"), spread=("accuracy", "std"), seeds=("seed", "nunique"),
        n_train=("n_train", "mean"), slice_order=("slice_order", "first"))
    grouped["spread"] = grouped["spread"].fillna(0.0)
    return grouped.sort_values(["slice_order", "accuracy"], ascending=[True, False])


def probabilities(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities N x C, true labels N) from a run's ``predictions.csv``."""
    columns = [c for c in predictions.columns if c.startswith("p:")]
    return predictions[columns].to_numpy(), predictions["label"].to_numpy()


def threshold_table(frame: pd.DataFrame, probs_by_run: dict[str, tuple[np.ndarray, np.ndarray]],
                    t: float) -> pd.DataFrame:
    """The article's argmax-vs-threshold table, per experiment and slice (means over seeds),
    plus the same at a chosen threshold ``t`` with coverage and selective accuracy.
    ``probs_by_run`` maps run ids to :func:`probabilities` of their predictions."""
    rows = []
    for row in frame.itertuples():
        probs, labels = probs_by_run[row.run_id]
        selective_accuracy, coverage = selective(probs, labels, t)
        rows.append({
            "dataset": row.dataset, "experiment": row.experiment, "slice": row.slice,
            "slice_order": row.slice_order, "argmax": argmax_accuracy(probs, labels),
            "P(true)>0.5": threshold_accuracy(probs, labels, 0.5),
            "P(true)>0.8": threshold_accuracy(probs, labels, 0.8),
            f"P(true)>{t:g}": threshold_accuracy(probs, labels, t),
            f"coverage@{t:g}": coverage, f"selective@{t:g}": selective_accuracy,
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    keys = ["dataset", "experiment", "slice"]
    numbers = {c: (c, "mean") for c in table.columns if c not in (*keys, "slice_order")}
    means = table.groupby(keys, as_index=False).agg(
        **numbers, seeds=("argmax", "size"), slice_order=("slice_order", "first"))
    return means.sort_values(["experiment", "slice_order"]).drop(columns="slice_order")


def smooth(values: pd.Series, weight: float) -> pd.Series:
    """Exponential moving average, as TensorBoard smooths (0 = raw, 0.99 = very smooth)."""
    if weight <= 0:
        return values
    return values.ewm(alpha=1 - weight, adjust=True).mean()


def slice_sizes(labels: np.ndarray, classes: tuple[str, ...], slices: list[str],
                holdout: float = HOLDOUT_SHARE, val: float = VAL_SHARE, sample_seed: int = 0
                ) -> pd.DataFrame:
    """Images per split and per slice for a dataset's labels, or the reason a slice is impossible."""
    from core.errors import UserError
    from core.splits import make_splits

    splits = make_splits(labels, classes, holdout, val)
    rows = [{"set": "holdout (fixed)", "images": len(splits.holdout)},
            {"set": "validation (fixed)", "images": len(splits.val)},
            {"set": "training pool", "images": int(sum(len(p) for p in splits.pools))}]
    for text in slices:
        try:
            count = len(splits.train(SliceSpec.parse(text), sample_seed, classes))
            rows.append({"set": f"slice {text}", "images": count})
        except UserError as error:
            rows.append({"set": f"slice {text}", "images": None, "note": str(error)})
    return pd.DataFrame(rows)
