"""Which runs a learning curve counts: each measurement once, whatever slice name it was asked by
(the original grid's "5%" beside a curve sweep's "20/class" train on the same images)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from core.store.measured import measured_once
from core.store.record import Summary

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-runs" / "920c858ee6ce" / "summary.json"
POOLS = {"Bag": 400, "Coat": 400}


def run(run_id: str, slice_: str, seed: int, sample_seed: int, solver: str | None = "lbfgs") -> Summary:
    summary = Summary.from_dict(json.loads(FIXTURE.read_text()))
    config = dataclasses.replace(
        summary.config, slice=slice_, seed=seed, sample_seed=sample_seed, solver=solver
    )
    return dataclasses.replace(summary, info=dataclasses.replace(summary.info, config=config, run_id=run_id))


def test_the_grid_and_the_curve_measure_a_converged_head_on_the_same_images_once():
    grid = [run(f"g{s}", "5%", s, s) for s in (1, 2, 3)]  # seed = sample seed, as the grid draws them
    curve = [run(f"c{s}", "20/class", 1, s) for s in (1, 2, 3)]  # seed 1, sample seeds 1 to 3
    kept = measured_once(grid + curve, POOLS)
    # as many runs by either name: the first name wins, and its runs are the ones kept
    assert [(s.run_id, s.config.slice) for s in kept] == [(f"c{s}", "20/class") for s in (1, 2, 3)]
    grid_only = measured_once(grid, POOLS)
    assert [(s.run_id, s.config.slice) for s in grid_only] == [(f"g{s}", "5%") for s in (1, 2, 3)]


def test_seeds_stay_apart_where_training_depends_on_them():
    grid = [run(f"g{s}", "5%", s, s, solver="adamw") for s in (1, 2, 3)]
    curve = [run(f"c{s}", "20/class", 1, s, solver="adamw") for s in (1, 2, 3)]
    kept = measured_once(grid + curve, POOLS)
    # (seed 1, sample 1) is one run asked twice; the other four differ by their seed
    assert len(kept) == 5 and len({s.config.slice for s in kept}) == 1


def test_slices_of_other_amounts_are_left_as_they_are():
    runs = [run("a", "1/class", 1, 1), run("b", "10%", 1, 1), run("c", "40/class", 2, 2)]
    kept = measured_once(runs, POOLS)
    assert [(s.run_id, s.config.slice) for s in kept] == [("a", "1/class"), ("b", "10%"), ("c", "10%")]


def test_the_whole_pool_counts_once_whatever_its_sample_seed():
    # a curve sweep trained "100%" with sample seeds 1 to 3: the same images, the same accuracy
    converged = [run(f"w{s}", "100%", 1, s) for s in (1, 2, 3)]
    assert [s.run_id for s in measured_once(converged, POOLS)] == ["w1"]
    # where the training seed matters, one run per training seed, whatever the sample seed
    tuned = [run(f"t{seed}{s}", "100%", seed, s, solver="adamw") for seed in (1, 2) for s in (1, 2, 3)]
    assert [s.run_id for s in measured_once(tuned, POOLS)] == ["t11", "t21"]


def test_a_share_of_classes_of_unequal_size_is_said_to_be_an_average(tmp_path):
    from core.answers.budget import CurvePoint, Selection, uneven_classes
    from core.base.paths import DEFAULT_DATA
    from core.data.datasets import scan
    from tests.conftest import copy_sample

    data = tmp_path / "uneven"
    copy_sample(DEFAULT_DATA, data, ("Bag",), 50)
    copy_sample(DEFAULT_DATA, data, ("Coat",), 20)
    dataset = scan(data, tmp_path / "cache")
    whole, few = (run(text, text, 1, 1) for text in ("100%", "3/class"))
    selection = Selection(dataset, "e", ("e",), (whole, few), tmp_path / "cache")
    # the pools are 40 and 16 (holdout and validation take 10% each): the curve puts them at 28
    said = uneven_classes(selection, CurvePoint("100%", 28.0, 0.9, 1, None, None, False))
    assert said == (
        "Classes differ in size: the models at 100% had 16 to 40 training images per class, and the "
        "curve places them at their average, 28. Read counts above 16 as an average over the classes, "
        "not as images every class has."
    )
    assert uneven_classes(selection, CurvePoint("3/class", 3.0, 0.6, 1, None, None, False)) is None
