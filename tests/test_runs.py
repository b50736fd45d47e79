"""The run cache survives kills, cancels and concurrent requests: nothing half-done is ever
reported complete, a run asked for twice at once is trained once, old caches still read."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.base.errors import UserError
from core.base.paths import PROJECT_ROOT
from core.engine.pipeline import train_run
from core.store import runs
from core.store.config import RunConfig
from core.store.record import RunInfo
from tests.command import core
from tests.quick import quick_run

LEGACY = PROJECT_ROOT / "tests" / "fixtures" / "legacy-runs"


def slow_run(epochs: int) -> list[str]:
    return [
        "run",
        "--backbone",
        "smallcnn",
        "--mode",
        "scratch",
        "--slice",
        "100%",
        "--image-size",
        "32",
        "--epochs",
        str(epochs),
        "--seed",
        "3",
        "--json",
    ]


SLOW_RUN = slow_run(400)  # about a minute: always stopped long before it ends


def start_cli(cache_dir: Path, data: Path, args: list[str]) -> subprocess.Popen:
    """The CLI as typed at a terminal. Ctrl+C is restored for it: a shell script that starts the
    test suite in the background (CI may) hands its children SIGINT ignored, and Python then
    never turns SIGINT into KeyboardInterrupt."""
    return subprocess.Popen(
        [sys.executable, "-m", "core", "--cache", str(cache_dir), *args, "--data", str(data)],
        cwd=PROJECT_ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


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


@pytest.mark.train
def test_a_killed_run_is_not_complete_and_reruns(tiny_data, cache_dir):
    request = quick_run(tiny_data)
    done = train_run(request, cache_dir).summary
    before = complete_files(cache_dir)

    process = start_cli(cache_dir, tiny_data, slow_run(20))  # killed after its first epoch
    partial = wait_for_training(cache_dir, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rid = partial.name

    assert runs.run_state(cache_dir, rid) == "interrupted"
    assert not runs.is_complete(cache_dir, rid)
    assert [s.run_id for s in runs.list_runs(cache_dir)] == [done.run_id]
    with pytest.raises(UserError, match=f"run {rid} has no complete results.*interrupted"):
        runs.load(cache_dir, rid)
    assert complete_files(cache_dir) == before, "a kill must not touch complete runs"

    rerun = core(cache_dir, *slow_run(20), "--data", str(tiny_data))
    assert rerun.returncode == 0, rerun.stderr
    assert runs.run_state(cache_dir, rid) == "complete"
    assert json.loads(rerun.stdout)["cached"] is False


@pytest.mark.train
def test_a_cancelled_run_is_marked_cancelled(tiny_data, cache_dir):
    process = start_cli(cache_dir, tiny_data, SLOW_RUN)
    partial = wait_for_training(cache_dir, process)
    runs.cancel_path(cache_dir, partial.name).touch()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.strip().splitlines()[-1] == f"error: run {partial.name} cancelled"
    assert runs.run_state(cache_dir, partial.name) == "cancelled"
    assert runs.list_runs(cache_dir) == []
    assert sorted(p.name for p in partial.iterdir()) == ["config.json", "status.json"], (
        "no half-trained files"
    )


@pytest.mark.train
def test_the_same_run_asked_for_three_times_at_once_is_trained_once(tiny_data, cache_dir):
    """Two browsers, or a sweep beside a CLI call: the later requests wait for the first and
    return its result instead of failing."""
    processes = [start_cli(cache_dir, tiny_data, slow_run(30)) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    assert len({r["run_id"] for r in results}) == 1
    assert sorted(r["cached"] for r in results) == [False, True, True], "trained exactly once"
    waiting = [err for _, err in outputs if "waiting for it to finish" in err]
    assert waiting, "a waiting request says who it waits for"
    assert "is being trained by process" in waiting[0]


@pytest.mark.train
def test_ctrl_c_and_sigterm_stop_the_run_cleanly(tiny_data, tmp_path):
    """Lightning turns SIGINT into SystemExit, and the CLI treats SIGTERM as Ctrl+C: the run is
    recorded as cancelled, not failed, and the command says so in one line."""
    for stop in (signal.SIGINT, signal.SIGTERM):
        cache_dir = tmp_path / stop.name
        process = start_cli(cache_dir, tiny_data, SLOW_RUN)
        partial = wait_for_training(cache_dir, process)
        process.send_signal(stop)
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert (
            stderr.strip().splitlines()[-1] == "error: interrupted; unfinished runs are not marked complete"
        )
        assert stdout == ""
        assert runs.run_state(cache_dir, partial.name) == "cancelled"
        assert runs.list_runs(cache_dir) == []


def test_a_run_killed_while_committing_is_not_complete(cache_dir):
    """The folder is marked complete, then renamed into place: a kill in between leaves a
    partial folder that says complete, which must not be believed."""
    info = RunInfo(
        "0123456789ab",
        RunConfig(data="/d", backbone="smallcnn", mode="scratch", slice="1/class"),
        ("a", "b"),
        "f" * 32,
    )
    folder = runs.start_partial(cache_dir, info)
    runs.set_status(folder, "complete")
    assert runs.run_state(cache_dir, "0123456789ab") == "interrupted"
    assert not runs.is_complete(cache_dir, "0123456789ab")


def legacy_cache(tmp_path: Path) -> Path:
    """A cache holding two runs written by the engine before the typed record (no manifest)."""
    cache = tmp_path / "legacy-cache"
    shutil.copytree(LEGACY, runs.runs_dir(cache))
    return cache


def test_runs_written_before_the_typed_record_still_load(tmp_path):
    cache = legacy_cache(tmp_path)
    summaries = runs.list_runs(cache)
    assert {s.run_id for s in summaries} == {"920c858ee6ce", "489093fafc8f"}
    run = runs.load(cache, "920c858ee6ce")
    assert run.summary.config.slice == "1/class" and run.summary.n_holdout == 3
    assert run.summary.accuracy == pytest.approx(1 / 3)
    predictions = run.predictions()
    assert predictions.probs.shape == (3, 3) and predictions.paths[0].count("/") == 1
    assert not run.metrics().epochs.empty
    result = core(cache, "runs", "--json")
    assert result.returncode == 0, result.stderr
    assert {r["run_id"] for r in json.loads(result.stdout)} == {"920c858ee6ce", "489093fafc8f"}


@pytest.mark.train
def test_run_ids_are_unchanged_so_an_old_cache_is_a_cache_hit(tiny_data, tmp_path):
    """The fixture was trained on the tiny dataset by the previous engine (its heads by AdamW, the
    only solver then): asking for the same configuration today finds it instead of training
    again."""
    cache = legacy_cache(tmp_path)
    request = quick_run(tiny_data, slice="100%", epochs=3, solver="adamw")
    result = train_run(request, cache)
    assert result.cached is True and result.summary.run_id == "489093fafc8f"
    assert runs.load(cache, "489093fafc8f").model() is not None
