"""The run cache survives kills and cancels: nothing half-done is ever reported complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import runs
from core.errors import UserError
from core.paths import PROJECT_ROOT


def slow_run(epochs: int) -> list[str]:
    return ["run", "--backbone", "smallcnn", "--mode", "scratch", "--slice", "100%",
            "--image-size", "32", "--epochs", str(epochs), "--seed", "3", "--json"]


SLOW_RUN = slow_run(400)  # about a minute: always stopped long before it ends


def start_cli(cache_dir: Path, data: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "--cache", str(cache_dir), *args,
                             "--data", str(data)], cwd=PROJECT_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_training(cache_dir: Path, process: subprocess.Popen, timeout: float = 120) -> Path:
    """The partial folder of the run once it has written some metrics."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for metrics in (cache_dir / "runs" / ".partial").glob("*/metrics.jsonl"):
            if metrics.stat().st_size > 0:
                return metrics.parent
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("training never started")


def complete_files(cache_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (cache_dir / "runs").glob("[!.]*/*")}


def test_a_killed_run_is_not_complete_and_reruns(tiny_data, cache_dir):
    from core.pipeline import train_run

    done = train_run(runs.RunConfig(data=str(tiny_data), backbone="efficientnet_lite0", mode="frozen",
                                    slice="1/class", image_size=64, epochs=2), cache_dir)
    before = complete_files(cache_dir)

    process = start_cli(cache_dir, tiny_data, slow_run(40))
    partial = wait_for_training(cache_dir, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rid = partial.name

    assert runs.run_state(cache_dir, rid) == "interrupted"
    assert not runs.is_complete(cache_dir, rid)
    assert [r["run_id"] for r in runs.list_runs(cache_dir)] == [done["run_id"]]
    with pytest.raises(UserError, match=f"run {rid} has no complete results.*interrupted"):
        runs.find_run(cache_dir, rid)
    assert complete_files(cache_dir) == before, "a kill must not touch complete runs"

    rerun = subprocess.run([sys.executable, "-m", "core", "--cache", str(cache_dir),
                            *slow_run(40), "--data", str(tiny_data)],
                           cwd=PROJECT_ROOT, text=True, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert runs.run_state(cache_dir, rid) == "complete"
    assert '"cached": false' in rerun.stdout


def test_a_cancelled_run_is_marked_cancelled(tiny_data, cache_dir):
    process = start_cli(cache_dir, tiny_data, SLOW_RUN)
    partial = wait_for_training(cache_dir, process)
    runs.cancel_path(cache_dir, partial.name).touch()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.strip().splitlines()[-1] == f"error: run {partial.name} cancelled"
    assert runs.run_state(cache_dir, partial.name) == "cancelled"
    assert runs.list_runs(cache_dir) == []


def test_a_live_run_is_not_trained_twice(tiny_data, cache_dir):
    process = start_cli(cache_dir, tiny_data, SLOW_RUN)
    partial = wait_for_training(cache_dir, process)
    try:
        assert runs.run_state(cache_dir, partial.name) == "running"
        second = subprocess.run([sys.executable, "-m", "core", "--cache", str(cache_dir), *SLOW_RUN,
                                 "--data", str(tiny_data)], cwd=PROJECT_ROOT, text=True,
                                capture_output=True, timeout=120)
        assert second.returncode == 2
        assert "is being trained by another process" in second.stderr
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def test_ctrl_c_stops_the_run_cleanly(tiny_data, cache_dir):
    """Lightning turns SIGINT into SystemExit: the run is recorded as cancelled, not failed,
    and the command says so in one line."""
    process = start_cli(cache_dir, tiny_data, SLOW_RUN)
    partial = wait_for_training(cache_dir, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted; unfinished runs are not marked complete"
    assert stdout == ""
    assert runs.run_state(cache_dir, partial.name) == "cancelled"
    assert runs.list_runs(cache_dir) == []


def test_a_run_killed_while_committing_is_not_complete(cache_dir):
    """The folder is marked complete, then renamed into place: a kill in between leaves a
    partial folder that says complete, which must not be believed."""
    folder = runs.start_partial(cache_dir, "0123456789ab", {"run_id": "0123456789ab"})
    runs.set_status(folder, "complete")
    assert runs.run_state(cache_dir, "0123456789ab") == "interrupted"
    assert not runs.is_complete(cache_dir, "0123456789ab")
