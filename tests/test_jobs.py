"""The dashboard's queue: runs train in a worker process, cached runs are not re-run, cancel works."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.base.errors import UserError
from core.base.paths import PROJECT_ROOT
from core.serving import jobs
from core.store import runs
from core.store.config import RunConfig
from tests.quick import quick_run

pytestmark = pytest.mark.train


def request(data: Path, **overrides) -> RunConfig:
    return quick_run(data, **overrides)


def wait_until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def states(cache: Path) -> dict[str, str]:
    return {job.run_id: job.state for job in jobs.list_jobs(cache)}


def test_submitted_runs_are_trained_by_a_background_worker(tiny_data, cache_dir):
    submitted = jobs.submit(cache_dir, [request(tiny_data), request(tiny_data, slice="3/class")])
    assert [j.state for j in submitted] == ["queued", "queued"]
    assert not jobs.ensure_worker(cache_dir), "a second worker started while the first started up"
    wait_until(lambda: all(s == "complete" for s in states(cache_dir).values()))
    assert all(runs.is_complete(cache_dir, j.run_id) for j in submitted)
    wait_until(lambda: not jobs.worker_alive(cache_dir), timeout=30)  # it stops when idle
    log = (cache_dir / "jobs" / "worker.log").read_text()
    assert len(re.findall(r"\d+ jobs? done", log)) == 1, log

    again = jobs.submit(cache_dir, [request(tiny_data)])
    assert again[0].state == "cached" and not jobs.worker_alive(cache_dir)


def test_a_run_is_not_queued_twice(tiny_data, cache_dir):
    first = jobs.submit(cache_dir, [request(tiny_data), request(tiny_data)], start_worker=False)
    assert jobs.tally(first, set()) == "1 run queued, 0 already cached."
    known = {j.id for j in jobs.list_jobs(cache_dir)}
    second = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)
    assert first[0].id == second[0].id
    assert [j.state for j in jobs.list_jobs(cache_dir)] == ["queued"]
    assert jobs.tally(second, known) == "0 runs queued, 0 already cached, 1 already waiting or training."


def test_cancel_a_waiting_run(tiny_data, cache_dir):
    job = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    jobs.cancel(cache_dir, job.id)
    assert states(cache_dir) == {job.run_id: "cancelled"}
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 0
    assert not runs.is_complete(cache_dir, job.run_id)


def test_cancel_the_running_run(tiny_data, cache_dir):
    slow = request(tiny_data, backbone="smallcnn", mode="scratch", slice="100%", image_size=32, epochs=500)
    job = jobs.submit(cache_dir, [slow], start_worker=False)[0]
    worker = threading.Thread(target=jobs.work, args=(cache_dir, 0.1))
    worker.start()
    wait_until(lambda: (runs.partial_dir(cache_dir, job.run_id).metrics).exists())
    jobs.cancel(cache_dir, job.id)
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert states(cache_dir) == {job.run_id: "cancelled"}
    assert runs.run_state(cache_dir, job.run_id) == "cancelled"


def test_cancel_right_after_the_worker_claims_the_run(tiny_data, cache_dir):
    """The user clicks cancel in the instant between the worker taking the job off the queue
    and its training starting: the run must still stop."""
    job = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    claimed = jobs._next(cache_dir)  # what the worker does first
    jobs.cancel(cache_dir, job.id)
    jobs._run(cache_dir, [claimed])
    assert states(cache_dir) == {job.run_id: "cancelled"}
    assert not runs.is_complete(cache_dir, job.run_id)
    assert not runs.cancel_path(cache_dir, job.run_id).exists()  # nothing stale is left


@pytest.mark.parametrize("solver", ["adamw", "lbfgs"])
def test_a_queued_grid_trains_its_heads_together_and_a_cancelled_one_stops_alone(
    tiny_data, cache_dir, solver
):
    """Heads queued from a page train together, as a swept grid does (AdamW heads in one fit,
    their training time its share; L-BFGS heads one by one, each its own time); a run cancelled
    while they train is recorded cancelled, the others complete."""
    grid = [
        request(tiny_data, slice=s, seed=seed, epochs=30, solver=solver)
        for s in ("1/class", "3/class")
        for seed in (1, 2)
    ]
    queued = jobs.submit(cache_dir, grid, start_worker=False)
    stopped = queued[1]
    runs.request_cancel(cache_dir, stopped.run_id)  # what Cancel does to a run in training
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 4
    finished = {job.run_id: job for job in jobs.list_jobs(cache_dir)}
    assert finished[stopped.run_id].state == "cancelled"
    assert runs.run_state(cache_dir, stopped.run_id) == "cancelled"
    assert not runs.cancel_path(cache_dir, stopped.run_id).exists(), "nothing stale is left"
    others = [job.run_id for job in queued if job.run_id != stopped.run_id]
    assert {finished[rid].state for rid in others} == {"complete"}
    times = {runs.load(cache_dir, rid).summary.train_seconds for rid in others}
    assert len(times) == 1 if solver == "adamw" else len(times) > 1, "one fit's share, or each its own"


def test_a_grid_being_queued_is_claimed_whole_by_a_worker_looking_meanwhile(
    tiny_data, cache_dir, monkeypatch
):
    """A page writes a grid's jobs one by one; a worker that looks in between waits for the
    last, so the grid trains as one fit, not in two parts."""
    grid = [request(tiny_data, slice=s) for s in ("1/class", "3/class", "5/class")]
    first_written, go_on = threading.Event(), threading.Event()
    write = jobs._write

    def slow_write(folder, job):
        write(folder, job)
        first_written.set()
        assert go_on.wait(60)

    monkeypatch.setattr(jobs, "_write", slow_write)
    submitting = threading.Thread(target=jobs.submit, args=(cache_dir, grid, False))
    submitting.start()
    assert first_written.wait(60)
    claimed: list[jobs.Job] = []
    claiming = threading.Thread(target=lambda: claimed.extend(jobs._next_group(cache_dir)))
    claiming.start()
    claiming.join(1.0)
    assert claiming.is_alive() and not claimed, "the worker waits while a grid is half-written"
    go_on.set()
    submitting.join(60)
    claiming.join(60)
    assert len(claimed) == 3


def test_a_failing_run_does_not_stop_the_queue(tiny_data, cache_dir, tmp_path):
    doomed = tmp_path / "doomed"
    shutil.copytree(tiny_data, doomed)
    next((doomed / "Bag").iterdir()).unlink()  # other content, so another run id
    bad, good = jobs.submit(cache_dir, [request(doomed), request(tiny_data)], start_worker=False)
    shutil.rmtree(doomed)  # the folder vanishes between submit and training
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 2
    finished = {j.run_id: j for j in jobs.list_jobs(cache_dir)}
    assert finished[bad.run_id].state == "failed"
    assert "data folder not found" in finished[bad.run_id].error
    assert finished[good.run_id].state == "complete"


def test_a_dead_workers_run_is_taken_up_again(tiny_data, cache_dir):
    job = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    queued = cache_dir / "jobs" / "queue" / f"{job.id}.json"
    queued.rename(cache_dir / "jobs" / "active" / queued.name)  # as a killed worker leaves it
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 1
    assert states(cache_dir) == {job.run_id: "complete"}


def test_a_run_that_keeps_killing_its_worker_fails(tiny_data, cache_dir):
    """Out of memory, say: the worker dies, the next one takes the run up, dies again. The run
    is then failed rather than blocking the queue forever."""
    job = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    queued = cache_dir / "jobs" / "queue" / f"{job.id}.json"
    record = {**json.loads(queued.read_text()), "state": "running", "attempts": jobs.MAX_ATTEMPTS - 1}
    (cache_dir / "jobs" / "active" / queued.name).write_text(json.dumps(record))
    queued.unlink()  # as the last worker left it
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 0
    failed = jobs.list_jobs(cache_dir)
    assert [(j.id, j.state) for j in failed] == [(job.id, "failed")]
    assert f"the worker was killed {jobs.MAX_ATTEMPTS} times while training this run" in failed[0].error


def test_a_stopped_worker_leaves_its_run_queued(tiny_data, cache_dir):
    """SIGTERM (a shutdown, a kill) reaches the worker mid-run: Lightning raises SystemExit.
    The run is not lost: it waits on the queue for the next worker."""
    slow = request(tiny_data, backbone="smallcnn", mode="scratch", slice="100%", image_size=32, epochs=500)
    job = jobs.submit(cache_dir, [slow], start_worker=False)[0]
    worker = subprocess.Popen(
        [sys.executable, "-m", "core", "--cache", str(cache_dir), "worker"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = runs.partial_dir(cache_dir, job.run_id).metrics
    wait_until(lambda: metrics.exists() and metrics.stat().st_size > 0)
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 130, stderr
    assert [(j.id, j.state) for j in jobs.list_jobs(cache_dir)] == [(job.id, "queued")]
    assert not runs.is_complete(cache_dir, job.run_id)


def test_only_one_worker_per_cache(cache_dir):
    import fcntl

    (cache_dir / "jobs").mkdir()
    with open(cache_dir / "jobs" / "worker.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert jobs.worker_alive(cache_dir)
        assert jobs.work(cache_dir, idle_exit_s=0.1) == 0


def test_a_bad_request_queues_nothing(tiny_data, cache_dir):
    with pytest.raises(UserError, match="slice"):
        jobs.submit(cache_dir, [request(tiny_data), request(tiny_data, slice="lots")], start_worker=False)
    assert jobs.list_jobs(cache_dir) == []


def test_weights_that_cannot_download_fail_the_job_with_a_hint(
    tiny_data, cache_dir, monkeypatch, no_downloads
):
    job = jobs.submit(cache_dir, [request(tiny_data, backbone="resnet18")], start_worker=False)[0]
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 1
    failed = jobs.list_jobs(cache_dir)[0]
    assert (failed.run_id, failed.state) == (job.run_id, "failed")
    assert "could not download ImageNet weights for 'resnet18'" in failed.error
    assert "efficientnet_lite0" in failed.error


def _claimed(cache: Path, configs: list[RunConfig]) -> list[jobs.Job]:
    """Queue ``configs`` and claim them as the worker does: heads that train together at once."""
    jobs.submit(cache, configs, start_worker=False)
    return jobs._next_group(cache)


@pytest.mark.train
def test_heads_that_fail_together_on_a_known_runtime_error_are_each_trained_alone(
    tiny_data, cache_dir, monkeypatch, capfd
):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("injected: CUDA out of memory")

    monkeypatch.setattr(jobs, "train_heads", out_of_memory)
    group = _claimed(cache_dir, [quick_run(tiny_data, slice=s) for s in ("1/class", "3/class")])
    assert [job.state for job in jobs.outcomes(cache_dir, group)] == ["complete", "complete"]
    assert (
        "training 2 heads together failed (RuntimeError: injected: CUDA out of memory)"
        in capfd.readouterr().out
    )


def test_a_bug_in_training_heads_together_is_raised_not_hidden(tiny_data, cache_dir, monkeypatch):
    def bug(*args, **kwargs):
        raise TypeError("injected: a bug of ours")

    monkeypatch.setattr(jobs, "train_heads", bug)
    group = _claimed(cache_dir, [quick_run(tiny_data, slice=s) for s in ("1/class", "3/class")])
    with pytest.raises(TypeError, match="a bug of ours"):
        jobs.outcomes(cache_dir, group)


def test_a_run_committed_while_its_activity_is_read_shows_its_last_progress(
    tiny_data, cache_dir, monkeypatch
):
    """The Train page reads a running job's progress, then the files' times; a run committed in
    between has moved its folder: its last progress is shown, nothing is raised."""
    from core.base.progress import Stage
    from core.store.record import Progress

    job = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    last = Progress(epoch=2, epochs=3, step=9, total_steps=12, elapsed_s=4.0, eta_s=1.0)
    monkeypatch.setattr(jobs, "read_progress", lambda path: last)  # read, then gone
    monkeypatch.setattr(jobs, "stage", lambda cache, j: Stage("extracting features", 5, 5, "image", 1.0))
    assert not runs.partial_dir(cache_dir, job.run_id).progress.exists()
    assert jobs.activity(cache_dir, job) == last
