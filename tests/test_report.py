"""The tables behind the Holdout and Experiments pages agree with the runs' own summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import runs
from core.pipeline import sweep
from core.report import (
    holdout_bars,
    probabilities,
    runs_frame,
    slice_order,
    slice_sizes,
    smooth,
    threshold_table,
)


@pytest.fixture(scope="module")
def grid(tiny_data, shared_cache) -> list[dict]:
    base = runs.RunConfig(data=str(tiny_data), backbone="efficientnet_lite0", mode="frozen",
                          slice="1/class", image_size=64, epochs=2)
    return sweep(base, ["5/class", "1/class", "50%"], [1, 2], shared_cache)


def test_runs_frame_and_slice_order(grid):
    frame = runs_frame(grid)
    assert len(frame) == 6
    assert slice_order(frame) == ["1/class", "5/class", "50%"]
    assert frame["experiment"].unique().tolist() == [
        "efficientnet_lite0 · frozen · aug none · 2 ep · 64 px · bs 256 · lr 0.01"]


def test_runs_on_another_holdout_split_are_never_averaged_together(grid):
    other = [{**s, "config": {**s["config"], "holdout": 0.25}} for s in grid]
    frame = runs_frame(grid + other)
    default = f"{Path(grid[0]['config']['data']).name} · {grid[0]['fingerprint'][:6]}"
    assert sorted(frame["dataset"].unique()) == [
        default, f"{default} · holdout 0.25, val 0.1, split seed 0"]
    assert len(holdout_bars(frame)) == 6


def test_same_folder_name_with_other_images_is_another_dataset(grid):
    changed = [{**s, "fingerprint": "f" * 32} for s in grid]  # images were added to the folder
    bars = holdout_bars(runs_frame(grid + changed))
    assert bars["dataset"].nunique() == 2 and len(bars) == 6


def test_runs_that_differ_in_a_hyperparameter_are_not_averaged_as_seeds(grid):
    longer = [{**s, "config": {**s["config"], "epochs": 5}} for s in grid if s["config"]["seed"] == 1]
    bars = holdout_bars(runs_frame(grid + longer))
    assert len(bars) == 6  # 3 slices x 2 experiments
    assert set(bars.groupby("experiment")["seeds"].max()) == {1, 2}


def test_bars_are_means_and_spreads_over_seeds(grid):
    bars = holdout_bars(runs_frame(grid)).set_index("slice")
    for text in ("1/class", "5/class", "50%"):
        accuracies = [s["holdout_accuracy"] for s in grid if s["config"]["slice"] == text]
        assert bars.loc[text, "accuracy"] == pytest.approx(np.mean(accuracies))
        assert bars.loc[text, "spread"] == pytest.approx(np.std(accuracies, ddof=1))
        assert bars.loc[text, "seeds"] == 2


def test_threshold_table_matches_the_summaries(grid, shared_cache):
    frame = runs_frame(grid)
    predictions = {rid: probabilities(runs.load_predictions(runs.find_run(shared_cache, rid)))
                   for rid in frame.run_id}
    table = threshold_table(frame, predictions, 0.8).set_index("slice")
    for text in ("1/class", "50%"):
        mine = [s for s in grid if s["config"]["slice"] == text]
        assert table.loc[text, "P(true)>0.8"] == pytest.approx(
            np.mean([s["threshold_accuracy"]["0.8"] for s in mine]))
        assert table.loc[text, "coverage@0.8"] == pytest.approx(np.mean([s["coverage"]["0.8"] for s in mine]))
        assert table.loc[text, "argmax"] == pytest.approx(np.mean([s["holdout_accuracy"] for s in mine]))
    lenient = threshold_table(frame, predictions, 0.3).set_index("slice")
    assert (lenient["coverage@0.3"] >= table["coverage@0.8"]).all()


def test_smoothing_keeps_length_and_zero_is_raw():
    values = pd.Series([1.0, 0.0, 1.0, 0.0])
    assert smooth(values, 0).equals(values)
    smoothed = smooth(values, 0.9)
    assert len(smoothed) == 4 and smoothed.std() < values.std()


def test_slice_sizes_explain_impossible_slices():
    labels = np.repeat(np.arange(3), 12)
    sizes = slice_sizes(labels, ("a", "b", "c"), ["1/class", "50/class"]).set_index("set")
    assert sizes.loc["holdout (fixed)", "images"] == 3
    assert sizes.loc["slice 1/class", "images"] == 3
    assert "pool has 10" in sizes.loc["slice 50/class", "note"]
