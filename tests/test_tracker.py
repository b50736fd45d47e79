"""``python -m core export-runs --mlflow``: runs logged to a real MLflow file store, read back
through MLflow's own client, once however often the export runs; ``--tensorboard``: the same
runs as event files, read back by TensorBoard's own reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest

from core.base.paths import PROJECT_ROOT
from core.engine.pipeline import train_run
from core.engine.tracker import EXPERIMENT, RUN_TAG
from core.store import runs
from tests.command import core, core_process
from tests.quick import quick_run

ARTIFACTS = {"predictions.csv", "summary.json", "model_card.json"}


def client(uri: str):
    """MLflow's client of ``uri`` (its file store is refused without the opt-in)."""
    from mlflow.tracking import MlflowClient

    with mock.patch.dict(os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"}):
        return MlflowClient(tracking_uri=uri)


def logged_runs(uri: str) -> list:
    """Every active MLflow run of the experiment, as MLflow reads them back."""
    mlflow = client(uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    return [] if experiment is None else list(mlflow.search_runs([experiment.experiment_id]))


def export(cache: Path, *args: str) -> dict:
    done = core(cache, "export-runs", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def two_datasets(tiny_data, other_data, tmp_path_factory) -> Path:
    """A cache with a quick run on each of two datasets (read-only: tests copy it to write)."""
    cache = tmp_path_factory.mktemp("tracker-cache")
    for data in (tiny_data, other_data):  # trained in this process: the commands under test are the exports
        train_run(quick_run(data), cache)
    assert len(runs.list_runs(cache)) == 2
    return cache


@pytest.fixture
def cache(two_datasets, tmp_path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(two_datasets, copy)
    return copy


@pytest.mark.train
def test_every_run_is_read_back_with_its_parameters_metrics_curves_and_files(cache, tmp_path):
    assert export(cache, "--mlflow") == {"logged": 2, "skipped": 0, "experiment": EXPERIMENT}
    uri = (cache / "mlruns").resolve().as_uri()  # bare --mlflow: the file store in the cache
    mlflow = client(uri)
    found = {r.data.tags[RUN_TAG]: r for r in logged_runs(uri)}
    summaries = {s.run_id: s for s in runs.list_runs(cache)}
    assert set(found) == set(summaries)
    for run_id, logged in found.items():
        summary, run = summaries[run_id], runs.load(cache, run_id)
        config = summary.config
        assert logged.info.status == "FINISHED"
        params = logged.data.params
        for key in ("backbone", "mode", "slice", "aug", "seed", "sample_seed", "epochs", "image_size", "lr"):
            assert params[key] == str(getattr(config, key)), key
        assert params["data"] == config.data and params["n_holdout"] == str(summary.n_holdout)
        assert logged.data.metrics["holdout_accuracy"] == summary.accuracy
        assert logged.data.metrics["holdout_coverage_0.8"] == summary.holdout.at(0.8).coverage
        assert logged.data.tags["hmd.dataset"] == Path(config.data).name
        epochs = run.metrics().epochs
        assert len(epochs) == config.epochs == 2
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            history = sorted(mlflow.get_metric_history(logged.info.run_id, key), key=lambda m: m.step)
            assert [m.step for m in history] == list(range(config.epochs))
            assert [m.value for m in history] == [float(v) for v in epochs[key]]
        assert {a.path for a in mlflow.list_artifacts(logged.info.run_id)} == ARTIFACTS
        copied = Path(mlflow.download_artifacts(logged.info.run_id, "predictions.csv", str(tmp_path)))
        assert copied.read_bytes() == run.folder.predictions.read_bytes()
        card = json.loads(
            Path(mlflow.download_artifacts(logged.info.run_id, "model_card.json", str(tmp_path))).read_text()
        )
        assert card["run_id"] == run_id and card["holdout_accuracy"] == summary.accuracy
    assert not (PROJECT_ROOT / "mlruns").exists() and not (PROJECT_ROOT / "mlflow.db").exists()


@pytest.mark.train
def test_one_datasets_runs_then_all_then_again_logs_each_run_once(cache, tiny_data, other_data, tmp_path):
    store = tmp_path / "team store"  # a folder path is taken as a file store
    uri = store.resolve().as_uri()
    assert export(cache, "--mlflow", str(store), "--data", str(tiny_data))["logged"] == 1
    (only,) = logged_runs(uri)
    assert only.data.params["data"] == str(tiny_data.resolve())
    # an export that died while logging the other dataset's run left it half-logged, RUNNING
    other = next(s.run_id for s in runs.list_runs(cache) if s.config.data == str(other_data.resolve()))
    mlflow = client(uri)
    stray = mlflow.create_run(only.info.experiment_id, tags={RUN_TAG: other}).info.run_id
    assert export(cache, "--mlflow", uri) == {"logged": 1, "skipped": 1, "experiment": EXPERIMENT}
    assert export(cache, "--mlflow", uri) == {"logged": 0, "skipped": 2, "experiment": EXPERIMENT}
    again = logged_runs(uri)
    assert sorted(r.data.tags[RUN_TAG] for r in again) == sorted(s.run_id for s in runs.list_runs(cache))
    assert all(r.info.status == "FINISHED" for r in again) and stray not in {r.info.run_id for r in again}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mlflow", "--data", "{tmp}/nowhere"], "error: no complete runs of {tmp}/nowhere in "),
        (["--mlflow", "http://127.0.0.1:9"], "error: cannot log to MLflow at http://127.0.0.1:9: "),
        (["--mlflow", "file:{tmp}/a-file"], "error: cannot log to MLflow at file:{tmp}/a-file: "),
        (["--mlflow", "nosuch://x"], "error: cannot log to MLflow at nosuch://x: "),
        ([], "error: export-runs needs one of --mlflow [URI]"),
        (["--mlflow", "--tensorboard"], "error: export-runs needs one of --mlflow [URI]"),
        (
            ["--tensorboard", "{tmp}/tb", "--data", "{tmp}/nowhere"],
            "error: no complete runs of {tmp}/nowhere in ",
        ),
    ],
    ids=[
        "data-without-runs",
        "no-server",
        "a-file",
        "unknown-scheme",
        "no-tracker",
        "both",
        "tb-data-without-runs",
    ],
)
def test_bad_input_is_one_line_and_exit_2(cache_dir, tmp_path, args, expected):
    (tmp_path / "a-file").write_text("not a folder")
    argv = ("export-runs", *(a.format(tmp=tmp_path) for a in args), "--json")
    # a server that does not answer must not hang the command: that one runs with a time limit
    hangs = any(a.startswith("http") for a in args)
    done = core_process(cache_dir, *argv, timeout=120) if hangs else core(cache_dir, *argv)
    assert one_line_error(done).startswith(expected.format(tmp=tmp_path))


@pytest.mark.train
def test_a_run_whose_predictions_changed_is_left_out_with_a_warning(cache, tmp_path):
    damaged, kept = (s.run_id for s in runs.list_runs(cache))
    path = runs.complete_dir(cache, damaged).predictions
    text = path.read_bytes()
    path.write_bytes(text[:-2] + (b"0" if text[-2:-1] != b"0" else b"1") + text[-1:])  # same size
    uri = (tmp_path / "store").as_uri()
    done = core(cache, "export-runs", "--mlflow", uri, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"logged": 1, "skipped": 0, "experiment": EXPERIMENT}
    assert f"run {damaged} is damaged" in done.stderr
    assert [r.data.tags[RUN_TAG] for r in logged_runs(uri)] == [kept]


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of one run's event files, as TensorBoard's own reader loads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.train
def test_every_run_is_written_as_tensorboard_events_once_and_a_half_written_one_again(cache, tmp_path):
    from core.engine.tensorboard_logs import DONE, run_folder

    folder = tmp_path / "tb"
    assert export(cache, "--tensorboard", str(folder)) == {"logged": 2, "skipped": 0, "folder": str(folder)}
    for summary in runs.list_runs(cache):
        found = tensorboard_scalars(run_folder(folder, summary))
        epochs = runs.load(cache, summary.run_id).metrics().epochs
        for key in ("train_loss", "val_acc"):
            kept = [(int(e), float(v)) for e, v in zip(epochs["epoch"], epochs[key], strict=True) if v == v]
            assert [step for step, _ in found[key]] == [step for step, _ in kept], key
            assert [value for _, value in found[key]] == pytest.approx([value for _, value in kept]), key
        assert found["holdout_accuracy"] == [(0, pytest.approx(summary.accuracy))]
    assert export(cache, "--tensorboard", str(folder))["skipped"] == 2
    first = run_folder(folder, runs.list_runs(cache)[0])
    (first / DONE).unlink()  # as if the export had stopped before this run was whole
    assert export(cache, "--tensorboard", str(folder)) == {"logged": 1, "skipped": 1, "folder": str(folder)}
    assert len(list(first.glob("events.out.tfevents.*"))) == 1, "written again, not added to"
