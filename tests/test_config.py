"""What a run is: defaults filled in, bad values refused with the flag named, grids spelled out."""

from __future__ import annotations

import dataclasses

import pytest

from core.base.errors import UserError
from core.data.splits import ORIGINAL_SLICES
from core.engine.pipeline import train_run
from core.store.config import RunConfig, grid, original_grid, parse_seeds, parse_slices, resolve, run_id


def request(**overrides) -> RunConfig:
    return RunConfig(
        **{
            "data": "/data",
            "backbone": "efficientnet_lite0",
            "mode": "frozen",
            "slice": "1/class",
            **overrides,
        }
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(mode="linear"), "unknown mode 'linear'; choose one of: frozen, finetune, scratch"),
        (dict(backbone="smallcnn"), "use --mode scratch"),
        (dict(aug="wild"), "unknown augmentation 'wild'"),
        (dict(image_size=16), "--image-size must be between 32 and 1024 pixels, not 16"),
        (dict(image_size=100000), "--image-size must be between 32 and 1024 pixels, not 100000"),
        (dict(seed=-1), "seeds must be 0 or more"),
        (dict(lr=-0.1), "--lr must be a positive learning rate"),
        # zero is a value, not "the default": it once trained with the default silently
        (dict(image_size=0), "--image-size must be between 32 and 1024 pixels, not 0"),
        (dict(epochs=0), "--epochs must be at least 1"),
        (dict(lr=0.0), "--lr must be a positive learning rate"),
        (dict(mode="finetune", epochs=1), "finetune needs at least 2 epochs"),
        (dict(slice="3 per class"), "slice '3perclass' not understood"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(bad, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(request(**bad), median_side=28)


def test_a_bad_request_fails_before_anything_is_written(tiny_data, cache_dir):
    with pytest.raises(UserError, match="needs 20 training images of class"):
        train_run(request(data=str(tiny_data), slice="20/class", image_size=64), cache_dir)
    with pytest.raises(UserError, match="--lr must be a positive"):
        train_run(request(data=str(tiny_data), lr=-1.0), cache_dir)
    assert not (cache_dir / "runs").exists()


def test_defaults_fill_in_so_equal_runs_share_a_key():
    plain = resolve(request(), median_side=28)
    spelled = resolve(
        request(epochs=60, batch_size=256, lr=1.0, image_size=96, sample_seed=0, solver="lbfgs"), 28
    )
    assert plain == spelled and run_id(plain, "f" * 32) == run_id(spelled, "f" * 32)
    assert plain.image_size == 96, "small images are not upscaled to the native 224 px"
    assert run_id(plain, "f" * 32) != run_id(plain, "e" * 32), "other images, another run"


def test_a_head_on_features_is_solved_by_lbfgs_and_adamw_keeps_its_old_keys():
    assert resolve(request(), 28).solver == "lbfgs"
    adamw = resolve(request(solver="adamw"), 28)
    assert (adamw.epochs, adamw.lr) == (20, 0.01), "AdamW keeps the defaults its cached runs had"
    legacy = dataclasses.replace(adamw, solver=None)  # as read from a record written before solvers
    assert run_id(adamw, "f" * 32) == run_id(legacy, "f" * 32)
    assert run_id(adamw, "f" * 32) != run_id(resolve(request(), 28), "f" * 32)
    assert resolve(request(mode="finetune"), 28).solver is None
    with pytest.raises(UserError, match="--solver lbfgs applies to a head on cached features only"):
        resolve(request(mode="finetune", solver="lbfgs"), 28)
    with pytest.raises(UserError, match="unknown solver 'sgd'; choose one of: lbfgs, adamw"):
        resolve(request(solver="sgd"), 28)


def test_seeds_and_slices_as_typed():
    assert parse_seeds(" 1, 2,2 ,3") == [1, 2, 3]
    with pytest.raises(UserError, match="--seeds must be whole numbers separated by commas, not '1,x'"):
        parse_seeds("1,x")
    with pytest.raises(UserError, match="seeds must be 0 or more"):
        parse_seeds("-2")
    assert parse_slices("3/Class, 5 %,12.5%,") == ["3/class", "5%", "12.5%"]
    with pytest.raises(UserError, match="slice 'lots' not understood"):
        parse_slices("1/class, lots")


def test_grids_vary_the_two_seeds_separately():
    runs = grid(request(), ["1/class", "5%"], [1, 2], sample_seeds=[7, 8])
    assert len(runs) == 8
    assert {(r.sample_seed, r.seed) for r in runs if r.slice == "5%"} == {(7, 1), (7, 2), (8, 1), (8, 2)}
    original = original_grid("/data")
    assert len(original) == 39 and {r.slice for r in original} == set(ORIGINAL_SLICES)
    assert {r.seed for r in original} == {1, 2, 3} and {r.sample_seed for r in original} == {None}


def test_a_curve_grid_trains_the_whole_pool_once_per_training_seed():
    runs = grid(request(), ["1/class", "100%"], [1, 2], sample_seeds=[7, 8, 9])
    assert {(r.sample_seed, r.seed) for r in runs if r.slice == "100%"} == {(7, 1), (7, 2)}
    assert len([r for r in runs if r.slice == "1/class"]) == 6


def test_a_newer_record_with_unknown_keys_still_reads():
    record = {**request().to_dict(), "precision": "bf16"}
    assert RunConfig.from_dict(record) == request()
