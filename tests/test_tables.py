"""The tables behind the Holdout and Experiments pages agree with the runs' own summaries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.engine.pipeline import sweep
from core.store import runs
from core.store.record import Summary
from core.store.tables import (
    cli_table,
    holdout_bars,
    run_labels,
    run_row,
    runs_frame,
    slice_order,
    threshold_rows,
)
from tests.quick import quick_run

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def grid(tiny_data, shared_cache) -> list[Summary]:
    base = quick_run(tiny_data)
    return [r.summary for r in sweep(base, ["5/class", "1/class", "50%"], [1, 2], shared_cache)]


def changed(summary: Summary, fingerprint: str | None = None, **config) -> Summary:
    """The same summary as if the run had another configuration or other images."""
    info = dataclasses.replace(
        summary.info,
        config=dataclasses.replace(summary.config, **config),
        fingerprint=fingerprint or summary.info.fingerprint,
    )
    return dataclasses.replace(summary, info=info)


def test_runs_frame_and_slice_order(grid):
    frame = runs_frame(grid)
    assert len(frame) == 6
    assert slice_order(frame) == ["1/class", "5/class", "50%"]
    assert frame["experiment"].unique().tolist() == [
        "efficientnet_lite0 · frozen · aug none · L-BFGS · 64 px"
    ]


def test_runs_on_another_holdout_split_are_never_averaged_together(grid):
    frame = runs_frame(grid + [changed(s, holdout=0.25) for s in grid])
    default = Path(grid[0].config.data).name
    assert sorted(frame["dataset"].unique()) == [default, f"{default} · holdout 0.25, val 0.1, split seed 0"]
    assert len(holdout_bars(frame)) == 6


def test_same_folder_name_with_other_images_is_another_dataset(grid):
    frame = runs_frame(grid + [changed(s, fingerprint="f" * 32) for s in grid])
    bars = holdout_bars(frame)
    assert bars["dataset"].nunique() == 2 and len(bars) == 6
    name = Path(grid[0].config.data).name
    assert set(frame["dataset"]) == {f"{name} · {grid[0].info.fingerprint[:6]}", f"{name} · ffffff"}, (
        "a short hash only where two datasets share a name"
    )


def test_runs_that_differ_in_a_hyperparameter_are_not_averaged_as_seeds(grid):
    larger = [changed(s, image_size=96) for s in grid if s.config.seed == 1]
    adamw = [changed(s, solver="adamw") for s in grid if s.config.seed == 1]
    bars = holdout_bars(runs_frame(grid + larger))
    assert len(bars) == 6  # 3 slices x 2 experiments
    assert set(bars.groupby("experiment")["seeds"].max()) == {1, 2}
    assert len(holdout_bars(runs_frame(grid + adamw))) == 6, "another solver, another experiment"


def test_bars_are_means_and_spreads_over_seeds(grid):
    bars = holdout_bars(runs_frame(grid)).set_index("slice")
    for text in ("1/class", "5/class", "50%"):
        accuracies = [s.accuracy for s in grid if s.config.slice == text]
        assert bars.loc[text, "accuracy"] == pytest.approx(np.mean(accuracies))
        assert bars.loc[text, "spread"] == pytest.approx(np.std(accuracies, ddof=1))
        assert bars.loc[text, "seeds"] == 2


def test_threshold_rows_match_the_summaries(grid, shared_cache):
    frame = runs_frame(grid)
    predictions = {rid: runs.load(shared_cache, rid).predictions() for rid in frame.run_id}
    rows = {r.slice: r for r in threshold_rows(frame, predictions, 0.8)}
    for text in ("1/class", "50%"):
        mine = [s for s in grid if s.config.slice == text]  # every run scores the same holdout
        assert dict(rows[text].true_above)[0.8].estimate == pytest.approx(
            np.mean([s.holdout.at(0.8).threshold_accuracy for s in mine])
        )
        assert rows[text].coverage.estimate == pytest.approx(
            np.mean([s.holdout.at(0.8).coverage for s in mine])
        )
        assert rows[text].accuracy.estimate == pytest.approx(np.mean([s.accuracy for s in mine]))
    lenient = {r.slice: r for r in threshold_rows(frame, predictions, 0.3)}
    assert all(lenient[text].coverage.estimate >= rows[text].coverage.estimate for text in rows)


def test_one_name_per_column_in_the_pages_and_the_cli(grid):
    """The runs table, the threshold table and the CLI call each quantity the same."""
    row = run_row(grid[0])
    assert {"accuracy", "P(true)>0.5", "P(true)>0.8", "coverage@0.8"} <= set(row)
    header = cli_table([row]).splitlines()[0].split()
    assert {"accuracy", "P(true)>0.5", "P(true)>0.8", "coverage@0.8"} <= set(header)


def test_every_run_drawn_gets_its_own_curve_label():
    """A learning curve's runs share slice and seed (another sample seed each) and once shared
    a legend label: the later run's curves replaced the earlier's, 12 runs drawn, 4 in the
    legend."""
    runs_shown = pd.DataFrame(
        {
            "run_id": ["aaaaaa111111", "bbbbbb222222", "eeeeee555555", "cccccc333333", "dddddd444444"],
            "slice": ["5%", "5%", "5%", "5%", "1/class"],
            "seed": [1, 1, 1, 2, 1],
            "sample_seed": [1, 2, 2, 2, 1],  # the third differs in something else (its epochs)
            "experiment": ["lite0 · frozen · aug none"] * 5,
        }
    )
    labels = run_labels(runs_shown)
    assert len(set(labels.values())) == 5
    assert labels["cccccc333333"] == "5% s2" and labels["dddddd444444"] == "1/class s1"
    assert labels["aaaaaa111111"] == "5% s1 · sample 1"
    assert labels["bbbbbb222222"] == "5% s1 · sample 2 · bbbbbb"
    two_experiments = runs_shown.assign(
        experiment=["lite0 · frozen · aug none"] * 4 + ["lite0 · finetune · aug none"]
    )
    assert run_labels(two_experiments)["dddddd444444"] == "1/class s1 · finetune"


def test_the_pages_questions_of_the_run_table_name_the_right_runs(grid):
    """What the pages ask by name (core.store.run_queries): which holdouts, experiments and
    sibling runs, and whether augmentation varies."""
    from core.store import run_queries as rq

    other = [changed(s, aug="flip") for s in grid[:2]] + [changed(s, fingerprint="0" * 16) for s in grid[2:3]]
    frame = runs_frame([*grid, *other])
    assert len(rq.datasets(frame)) == 2  # other images under the same folder name are another holdout
    mine = rq.of_dataset(frame, rq.dataset_label(frame))
    assert rq.run_ids(mine) == [s.run_id for s in [*grid, *other[:2]]]
    assert len(rq.experiments(mine)) == 2 and rq.augmentations_vary(mine)
    flip = [e for e in rq.experiments(mine) if "flip" in e]
    assert rq.run_ids(rq.of_experiments(mine, flip)) == [s.run_id for s in other[:2]]
    assert rq.same_experiment(mine, grid[0].run_id) == [s.run_id for s in grid]
    assert [(b, m, len(runs)) for b, m, runs in rq.by_backbone_and_mode(mine)] == [
        ("efficientnet_lite0", "frozen", 8)
    ]
    assert set(rq.folder_labels(frame)) == {grid[0].config.data}
    assert rq.run_ids(rq.of_folder(frame, grid[0].config.data)) == rq.run_ids(frame)
    assert rq.folder_of(frame, grid[0].run_id) == grid[0].config.data  # a link to a run opens its dataset
    assert rq.folder_of(frame, "no-such-run") is None and rq.folder_of(frame, None) is None
