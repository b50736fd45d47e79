"""``python -m core`` end to end on a tiny real dataset, as a user types it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.answers import testsets
from core.base.errors import UserError
from core.base.intervals import Estimate, wilson
from core.cli import to_json
from core.data.splits import ORIGINAL_SLICES
from core.store import runs
from tests.command import core, core_process

QUICK = ["--image-size", "64", "--epochs", "3"]


def cli(cache: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = core(cache, *args)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def as_json(result: subprocess.CompletedProcess):
    return json.loads(result.stdout)  # fails if anything but the JSON reached stdout


@pytest.fixture(scope="module")
def messy_data(tiny_data, tmp_path_factory) -> Path:
    """The tiny dataset plus one corrupt file."""
    root = tmp_path_factory.mktemp("messy") / "data"
    shutil.copytree(tiny_data, root)
    (root / "Bag" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture(scope="module")
def trained(cache, messy_data) -> dict:
    """A run trained by ``python -m core`` in a process of its own: the entry point, and a stdout
    that holds the JSON alone though torch and Lightning write to the process's streams."""
    done = core_process(
        cache, "run", "--data", str(messy_data), "--slice", "3/class", "--seed", "1", *QUICK, "--json"
    )
    assert done.returncode == 0, done.stderr
    return as_json(done)


def test_inspect_lists_counts_and_unreadable_files(cache, messy_data):
    report = as_json(cli(cache, "inspect", "--data", str(messy_data), "--json"))
    assert report["classes"] == {"Bag": 12, "Sneaker": 12, "Trouser": 12}
    assert report["unreadable"] == ["Bag/broken.png"]
    assert report["splits"] == {"holdout": 3, "val": 3, "train_pool": 30}
    text = cli(cache, "inspect", "--data", str(messy_data)).stdout
    assert "unreadable: Bag/broken.png" in text


@pytest.mark.train
def test_run_reports_the_headline_numbers_then_hits_the_cache(cache, messy_data, trained):
    for key in ("run_id", "n_train", "n_val", "n_holdout", "holdout_accuracy"):
        assert key in trained
    assert trained["cached"] is False and trained["n_train"] == 9
    assert set(trained["threshold_accuracy"]) == set(trained["coverage"]) == {"0.5", "0.8"}
    for i, (name, row) in enumerate(zip(trained["per_class_accuracy"], trained["confusion"], strict=True)):
        told, right = trained["per_class_accuracy_interval"][name], wilson(row[i], sum(row))
        assert told == {"estimate": trained["per_class_accuracy"][name], "low": right.low, "high": right.high}
        assert told["low"] < told["estimate"] or told["estimate"] == 0, "3 holdout images: a wide interval"
    again = as_json(
        cli(cache, "run", "--data", str(messy_data), "--slice", "3/class", "--seed", "1", *QUICK, "--json")
    )
    assert again["cached"] is True and again["run_id"] == trained["run_id"]
    table = cli(cache, "runs").stdout
    assert trained["run_id"] in table and "3/class" in table


@pytest.mark.train
def test_a_larger_holdout_is_another_experiment(cache, messy_data, trained):
    assert as_json(cli(cache, "inspect", "--data", str(messy_data), "--holdout", "0.25", "--json"))[
        "splits"
    ] == {"holdout": 9, "val": 3, "train_pool": 24}
    larger = as_json(
        cli(
            cache,
            "run",
            "--data",
            str(messy_data),
            "--slice",
            "3/class",
            "--seed",
            "1",
            "--holdout",
            "0.25",
            *QUICK,
            "--json",
        )
    )
    assert larger["n_holdout"] == 9 and trained["n_holdout"] == 3
    assert larger["run_id"] != trained["run_id"] and larger["cached"] is False


@pytest.mark.train
def test_evaluate_on_another_folder(cache, trained, other_data):
    result = as_json(cli(cache, "evaluate", "--run", trained["run_id"], "--data", str(other_data), "--json"))
    assert result["n"] == 24
    (scored,) = testsets.scored(cache, trained["run_id"])
    predicted = testsets.predictions(cache, scored)
    truth = [predicted.classes.index(path.split("/")[0]) for path in predicted.paths]
    assert result["accuracy"] == pytest.approx(np.mean(predicted.predicted == truth)), "argmax hits over 24"


@pytest.mark.train
def test_cam_writes_overlays_for_misclassified_images(cache, trained, tmp_path):
    result = as_json(
        cli(
            cache,
            "cam",
            "--run",
            trained["run_id"],
            "--misclassified",
            "2",
            "--method",
            "gradcam",
            "--out",
            str(tmp_path),
            "--json",
        )
    )
    files = [Path(p) for p in result["files"]]
    predictions = runs.load(cache, trained["run_id"]).predictions().frame()
    expected = min(2, int((predictions.true != predictions.pred).sum()))
    assert len(files) == 2 * expected and all(f.parent == tmp_path for f in files)
    assert {f.name.rsplit("_", 1)[1] for f in files} <= {"pred.png", "true.png"}
    for file in files:
        assert Image.open(file).size == (64, 64)


@pytest.mark.train
def test_sweep_runs_the_whole_grid_and_resumes(cache, tiny_data):
    args = ["sweep", "--data", str(tiny_data), "--preset", "seed-grid", "--seeds", "1", *QUICK, "--json"]
    rows = as_json(cli(cache, *args))
    assert [r["config"]["slice"] for r in rows] == list(ORIGINAL_SLICES)
    assert [r["n_train"] for r in rows][:2] == [3, 9]
    assert rows[-1]["n_train"] == 30
    assert all(r["cached"] for r in as_json(cli(cache, *args)))
    assert "P(true)>0.8" in cli(cache, *args[:-1]).stdout


def test_backbones_say_which_weights_are_offline(cache):
    rows = {r["name"]: r for r in as_json(cli(cache, "backbones", "--json"))}
    assert rows["efficientnet_lite0"]["pretrained_available"] is True
    assert rows["smallcnn"]["weights"] == "none"
    assert {"resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny"} <= set(rows)


@pytest.mark.parametrize(
    "args, message",
    [
        (["inspect", "--data", "/no/such/folder"], "error: data folder not found: /no/such/folder"),
        (["run", "--slice", "3 per class"], "error: slice '3perclass' not understood"),
        (["run", "--slice", "1/class", "--backbone", "vgg99"], "error: unknown backbone 'vgg99'"),
        (["evaluate", "--run", "feedfacecafe", "--data", "."], "error: run feedfacecafe has no complete"),
        (["sweep", "--seeds", "1,x"], "error: --seeds must be whole numbers"),
        (
            ["run", "--slice", "1/class", "--holdout", "0.6", "--val", "0.5"],
            "error: --holdout (0.6) and --val (0.5) are shares of each class",
        ),
        (["run", "--slice", "1/class", "--split-seed", "-1"], "error: --split-seed must be 0 or more"),
    ],
)
def test_errors_are_one_line_on_stderr(cache, tiny_data, args, message):
    if args[0] in ("run", "sweep"):
        args = [*args, "--data", str(tiny_data)]
    result = cli(cache, *args, ok=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.train
def test_export_writes_a_verified_model_and_its_card(cache, trained, tmp_path):
    result = as_json(
        cli(
            cache,
            "export",
            "--run",
            trained["run_id"],
            "--format",
            "onnx",
            "--out",
            str(tmp_path / "model.onnx"),
            "--json",
        )
    )
    card = json.loads((tmp_path / "model.onnx.json").read_text())
    assert result["verified"]["argmax_agreement"] == 1.0 and card["run_id"] == trained["run_id"]
    assert card["classes"] == ["Bag", "Sneaker", "Trouser"] and card["input"]["shape"][1:] == [3, 64, 64]
    from core.engine.export import load_exported

    probs = load_exported(tmp_path / "model.onnx")(runs.load(cache, trained["run_id"]).images()[:2])
    assert probs.shape == (2, 3)


@pytest.mark.train
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_every_run_as_a_table_file(cache, trained, tmp_path, fmt):
    import pandas as pd

    out = tmp_path / f"runs.{fmt}"
    assert "wrote" in cli(cache, "runs", "--format", fmt, "--out", str(out)).stdout
    frame = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert trained["run_id"] in set(frame["run_id"])
    assert {"accuracy", "P(true)>0.8", "config.seed", "config.image_size", "train_seconds"} <= set(
        frame.columns
    )


def test_json_output_holds_no_number_a_strict_parser_refuses():
    # json.dumps prints NaN and Infinity, which JavaScript's JSON.parse and jq refuse
    value = to_json({"fit_up_to": float("nan"), "curve": [Estimate(0.5, -np.inf, np.inf)]})
    assert value == {"fit_up_to": None, "curve": [{"estimate": 0.5, "low": None, "high": None}]}
    assert json.dumps(value, allow_nan=False)


def test_a_cache_that_is_a_file_is_one_line_naming_it(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    done = core(cache, "runs")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"error: the cache {cache} is a file, not a folder: name a folder (--cache or $HMD_CACHE)"
    )


def test_an_experiment_named_by_a_part_several_hold_lists_those_it_matches():
    from core.store.tables import match_experiment

    labels = ("lite0 · L-BFGS · 96 px", "lite0 · L-BFGS · 64 px", "lite0 · finetune · 64 px")
    with pytest.raises(UserError) as found:
        match_experiment("64 px", labels)
    assert str(found.value) == (
        "--experiment '64 px' matches 2 of the experiments on this dataset: lite0 · L-BFGS · 64 px; "
        "lite0 · finetune · 64 px"
    )


def test_an_answer_read_without_damaged_runs_says_how_many_were_left_out(tmp_path, tiny_data):
    cache = tmp_path / "cache"
    (cache / "runs" / "halfwritten").mkdir(parents=True)  # a folder a killed process left behind
    done = core(cache, "budget", "--data", str(tiny_data), "--target", "0.9")
    assert done.returncode == 2
    warning, error = done.stderr.strip().splitlines()
    assert warning == (
        "warning: 1 damaged run left out (python -m core doctor lists them; --fix moves them aside)"
    )
    assert error.startswith("error: no cached runs for")
