"""The typed run record reads what the engine writes, and says when a file was damaged."""

from __future__ import annotations

import pytest

from core.base.errors import RunDamaged
from core.store.record import Progress, metrics_line, read_metrics, read_progress, write_progress


def test_a_half_written_last_metrics_line_is_left_out(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        metrics_line("step", {"epoch": 0, "step": 1, "train_loss": 1.0, "train_acc": 0.5, "t": 0.1})
        + metrics_line(
            "epoch",
            {
                "epoch": 0,
                "step": 1,
                "train_loss": 1.0,
                "train_acc": 0.5,
                "val_loss": 0.9,
                "val_acc": 0.6,
                "t": 0.2,
            },
        )
        + '{"kind": "step", "epo'
    )
    metrics = read_metrics(path)
    assert len(metrics.steps) == 1 and metrics.epochs["val_acc"].tolist() == [0.6]


def test_a_damaged_line_before_the_last_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "st\n' + metrics_line("step", {"epoch": 0, "step": 1, "t": 0.1}))
    with pytest.raises(RunDamaged, match="line 1 is not JSON"):
        read_metrics(path)


def test_no_metrics_yet_reads_as_empty_curves(tmp_path):
    metrics = read_metrics(tmp_path / "missing.jsonl")
    assert metrics.empty and list(metrics.epochs.columns)[:2] == ["epoch", "step"]


def test_progress_round_trips_and_estimates_the_time_left(tmp_path):
    progress = Progress.measure(epoch=1, epochs=4, step=10, total_steps=40, elapsed_s=5.0)
    assert progress.eta_s == 15.0 and progress.fraction == 0.25
    assert progress.describe() == "epoch 2/4, step 10/40, about 15 s left"
    write_progress(tmp_path / "progress.json", progress)
    assert read_progress(tmp_path / "progress.json") == progress
    assert read_progress(tmp_path / "nothing.json") is None


def test_a_runs_status_reads_back_typed_and_a_damaged_one_reads_as_none(tmp_path):
    import os

    from core.store.record import RunStatus, read_status
    from core.store.runs import RunFolder, set_status

    folder = RunFolder(tmp_path / "abc")
    folder.path.mkdir(parents=True)
    set_status(folder, "failed", "RuntimeError: boom")
    status = read_status(folder.status)
    assert isinstance(status, RunStatus)
    assert (status.state, status.pid, status.error) == ("failed", os.getpid(), "RuntimeError: boom")
    folder.status.write_text('{"state": "running"')  # cut short by a kill
    assert read_status(folder.status) is None
    assert read_status(tmp_path / "nowhere.json") is None
