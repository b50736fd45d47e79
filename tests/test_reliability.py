"""Fault injection: each fault an operator met is planted for real, and nothing may be lost.

Malformed job files, corrupt and missing run files, truncated cached arrays, a full disk (a
real small tmpfs where this machine lets root mount one), SIGKILL and SIGTERM of a real
worker, a forked child that outlives its parent, temporary files of killed writers, and a
sweep killed at random moments that must end byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.base.errors import DiskFull, RunDamaged
from core.base.locks import is_held, try_lock
from core.base.paths import PROJECT_ROOT, RESERVE_NAME, clean_temporaries, keep_reserve, read_json, write_json
from core.engine.pipeline import train_run
from core.serving import jobs
from core.store import doctor, runs
from core.store.config import RunConfig
from tests.command import core
from tests.quick import quick_run


def request(data: Path, **overrides) -> RunConfig:
    return quick_run(data, **overrides)


def wait_until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def start_worker(cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "core", "--cache", str(cache), "worker"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


# --- the queue ------------------------------------------------------------------------------


def plant_bad_job_files(cache: Path) -> list[Path]:
    queue, active = cache / "jobs" / "queue", cache / "jobs" / "active"
    queue.mkdir(parents=True, exist_ok=True)
    active.mkdir(parents=True, exist_ok=True)
    planted = [
        queue / "0-empty.json",
        queue / "1-braces.json",
        queue / "2-bytes.json",
        active / "3-partial.json",
    ]
    planted[0].write_bytes(b"")
    planted[1].write_text("{}")
    planted[2].write_bytes(os.urandom(64))
    planted[3].write_text(json.dumps({"id": "3-partial", "run_id": "abc", "state": "running"}))
    return planted


@pytest.mark.train
def test_malformed_job_files_are_set_aside_and_the_queue_runs_on(tiny_data, cache_dir):
    planted = plant_bad_job_files(cache_dir)
    good = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    assert jobs.work(cache_dir, idle_exit_s=0.1) == 1
    assert [(j.id, j.state) for j in jobs.list_jobs(cache_dir)] == [(good.id, "complete")]
    assert not any(p.exists() for p in planted), "bad files must not stay in the queue"
    quarantined = {p.name for p in (cache_dir / "quarantine").rglob("*.json")}
    assert quarantined == {p.name for p in planted}


def test_pages_open_with_malformed_job_files(cache_dir, monkeypatch):
    plant_bad_job_files(cache_dir)
    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    with try_lock(cache_dir / "jobs" / "worker.lock"):  # no worker starts from the test
        app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
        assert not app.exception and app.metric[2].value == "0"
        app.switch_page("pages/2_Train.py").run()
        assert not app.exception


def test_an_old_job_record_with_extra_fields_still_reads(cache_dir):
    queue = cache_dir / "jobs" / "queue"
    queue.mkdir(parents=True)
    config = request(Path("/data")).to_dict()
    write_json(
        queue / "5-x.json",
        {"id": "5-x", "run_id": "x", "config": config, "state": "queued", "submitted": 1.0, "priority": 3},
    )
    assert [j.id for j in jobs.list_jobs(cache_dir)] == ["5-x"]


@pytest.mark.train
def test_sigkill_of_a_real_worker_requeues_its_job_and_sigterm_leaves_it_waiting(tiny_data, cache_dir):
    """kill -9 mid-training: the next worker takes the job up (one attempt counted). SIGTERM
    while the worker waits outside Lightning (here, for another process's lock on the run):
    the job goes back on the queue, no attempt counted, exit 130."""
    slow = request(tiny_data, backbone="smallcnn", mode="scratch", slice="100%", image_size=32, epochs=500)
    job = jobs.submit(cache_dir, [slow], start_worker=False)[0]
    worker = start_worker(cache_dir)
    metrics = runs.partial_dir(cache_dir, job.run_id).metrics
    wait_until(lambda: metrics.exists() and metrics.stat().st_size > 0)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert not jobs.worker_alive(cache_dir), "a killed worker's lock must go with it"

    with try_lock(runs.runs_dir(cache_dir) / ".partial" / f"{job.run_id}.lock"):  # another trainer
        worker = start_worker(cache_dir)
        wait_until(
            lambda: jobs.worker_alive(cache_dir) and not any((cache_dir / "jobs" / "queue").glob("*.json"))
        )
        time.sleep(1.0)  # inside the wait for the run's lock
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 130, stderr
    [waiting] = jobs.list_jobs(cache_dir)
    assert (waiting.id, waiting.state, waiting.attempts) == (job.id, "queued", 1)


def test_a_forked_child_does_not_keep_its_dead_parents_lock(tmp_path):
    """A DataLoader worker is a forked child: after kill -9 of its parent it must not hold the
    worker's lock, or a restarted worker finds it taken and exits having done nothing."""
    lock = tmp_path / "worker.lock"
    script = (
        "import os, time\nfrom pathlib import Path\nfrom core.base.locks import try_lock\n"
        f"with try_lock(Path({str(lock)!r})):\n"
        "    child = os.fork()\n    if child == 0:\n        time.sleep(30)\n        os._exit(0)\n"
        "    print(child, flush=True)\n    time.sleep(30)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    try:
        assert is_held(lock)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        os.kill(child, 0)  # the child is still alive...
        # ...but the lock goes with its parent, once the child has run its after-fork hook (a
        # loaded machine may not have scheduled it yet); a child that kept it holds it 30 s
        deadline = time.monotonic() + 10
        while is_held(lock) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_held(lock), "the forked child kept its dead parent's lock"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


# --- the run record -------------------------------------------------------------------------


@pytest.fixture
def trained(tiny_data, cache_dir) -> str:
    return train_run(request(tiny_data), cache_dir).summary.run_id


@pytest.mark.train
@pytest.mark.parametrize("content", [b"[]", os.urandom(300), b'{"run_id": "x"}'])
def test_a_corrupt_summary_is_reported_by_name_and_retrained_on_request(
    tiny_data, cache_dir, trained, content
):
    other = train_run(request(tiny_data, slice="3/class"), cache_dir).summary.run_id
    runs.complete_dir(cache_dir, trained).summary.write_bytes(content)
    assert [s.run_id for s in runs.list_runs(cache_dir)] == [other]
    listed = core(cache_dir, "runs", "--json")
    assert listed.returncode == 0 and [r["run_id"] for r in json.loads(listed.stdout)] == [other]
    assert f"warning: run {trained} is damaged" in listed.stderr
    with pytest.raises(RunDamaged, match=f"run {trained} is damaged"):
        runs.load(cache_dir, trained)
    again = train_run(request(tiny_data), cache_dir)
    assert again.cached is False and again.summary.run_id == trained
    assert runs.is_complete(cache_dir, trained)
    assert list((cache_dir / "quarantine").glob(f"*/runs/{trained}")), "the damaged folder is kept aside"


@pytest.mark.train
@pytest.mark.parametrize("damage", ["summary.json", "weights.pt", "predictions.csv"])
def test_a_run_missing_or_truncating_a_file_is_not_complete(tiny_data, cache_dir, trained, damage):
    folder = runs.complete_dir(cache_dir, trained)
    path = folder.path / damage
    if damage == "predictions.csv":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut mid-row
    else:
        path.unlink()
    assert not runs.is_complete(cache_dir, trained)
    assert runs.scan_runs(cache_dir).damaged.keys() == {trained}
    with pytest.raises(RunDamaged, match=damage):
        runs.load(cache_dir, trained)
    assert train_run(request(tiny_data), cache_dir).cached is False  # rebuilt, not "directory not empty"
    assert runs.load(cache_dir, trained).predictions().probs.shape == (3, 3)


@pytest.mark.train
def test_a_changed_byte_is_caught_by_the_checksum(cache_dir, trained):
    weights = runs.complete_dir(cache_dir, trained).weights
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(RunDamaged, match="weights.pt does not match its checksum"):
        runs.load(cache_dir, trained).model()
    found = doctor.check(cache_dir)
    assert [(f.kind, Path(f.path).name) for f in found] == [("damaged_run", trained)]


@pytest.mark.train
def test_a_truncated_features_file_is_rebuilt(tiny_data, cache_dir, trained, capfd):
    [features] = (cache_dir / "features").glob("*.npy")
    features.write_bytes(features.read_bytes()[:1000])
    result = train_run(request(tiny_data, seed=2), cache_dir)
    assert result.cached is False and runs.is_complete(cache_dir, result.summary.run_id)
    assert "is damaged" in capfd.readouterr().err
    assert np.load(features).shape[0] == 36


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs (root only; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the patched test covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk until only ``leave`` bytes are free."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "ab") as handle:
        handle.write(bytes(max(0, free - leave)))
    return filler


@pytest.mark.train
@pytest.mark.parametrize("room", [12_000, 40_000], ids=["full-at-start", "full-mid-run"])
def test_a_full_disk_fails_the_run_with_one_line_and_loses_no_job(tiny_data, small_disk, room):
    """Features and images fit, then the disk fills: the next run cannot write its files. The
    run is marked failed with a line naming the folder, the job is failed (not lost), the
    finished run is untouched, and after space is freed a retry completes."""
    cache = small_disk / "cache"
    keep_reserve(cache)
    first = jobs.submit(cache, [request(tiny_data)], start_worker=False)
    assert jobs.work(cache, idle_exit_s=0.1) == 1 and runs.is_complete(cache, first[0].run_id)
    filler = fill(small_disk, leave=room)

    job = jobs.submit(cache, [request(tiny_data, slice="3/class")], start_worker=False)[0]
    assert jobs.work(cache, idle_exit_s=0.1) == 1
    failed = {j.run_id: j for j in jobs.list_jobs(cache)}[job.run_id]
    assert failed.state == "failed" and failed.error.startswith(f"disk full: cannot write in {cache}")
    assert len(failed.error.splitlines()) == 1
    assert runs.run_state(cache, job.run_id) == "failed", failed.error
    recorded = read_json(runs.partial_dir(cache, job.run_id).status)["error"]
    assert recorded.startswith("disk full"), "the run's own status says why"
    assert runs.is_complete(cache, first[0].run_id) and runs.load(cache, first[0].run_id).predictions()

    filler.unlink()
    jobs.retry(cache, [failed.id], start_worker=False)
    assert jobs.work(cache, idle_exit_s=0.1) == 1
    assert runs.is_complete(cache, job.run_id)
    keep_reserve(cache)
    assert (cache / RESERVE_NAME).exists(), "the reserve is taken back once there is room"


@pytest.mark.train
def test_a_disk_too_full_for_the_image_cache_says_so_before_decoding(tiny_data, small_disk):
    cache = small_disk / "cache"
    fill(small_disk, leave=200_000)
    with pytest.raises(DiskFull, match=r"disk full: cannot write in .*/images \(needs about 1\.\d MB"):
        train_run(request(tiny_data), cache)


def test_a_job_whose_record_cannot_be_written_goes_back_on_the_queue(tiny_data, cache_dir, monkeypatch):
    """Even the reserve did not make room: the job is not dropped, it waits on the queue."""
    job = jobs.submit(cache_dir, [request(tiny_data)], start_worker=False)[0]
    claimed = jobs._next(cache_dir)
    active = cache_dir / "jobs" / "active" / f"{job.id}.json"

    def no_room(folder, job):
        raise DiskFull(f"disk full: cannot write in {folder}")

    monkeypatch.setattr(jobs, "_write", no_room)
    with pytest.raises(DiskFull):
        jobs._close(cache_dir, active, jobs.finished(claimed, "failed", "x"))
    monkeypatch.undo()
    assert [(j.id, j.state) for j in jobs.list_jobs(cache_dir)] == [(job.id, "queued")]


# --- leftovers and the doctor ------------------------------------------------------------------


def test_temporary_files_of_killed_writers_are_cleaned_but_live_ones_kept(tmp_path):
    stale, fresh, live = (tmp_path / f".a.npy.{name}.tmp" for name in ("stale", "fresh", "live"))
    for path in (stale, fresh, live):
        path.write_bytes(b"x" * 10)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(live, (old, old))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from core.base.locks import try_lock\nimport time\n"
            f"with try_lock(__import__('pathlib').Path({str(live)!r})):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert clean_temporaries(tmp_path) == [stale]
        assert fresh.exists() and live.exists()
    finally:
        holder.kill()


@pytest.mark.train
def test_doctor_reports_then_repairs_and_the_home_page_warns(tiny_data, cache_dir, trained, monkeypatch):
    runs.complete_dir(cache_dir, trained).predictions.write_text("cut")
    partial = runs.partial_dir(cache_dir, "feedfacecafe")
    partial.path.mkdir(parents=True)
    write_json(partial.status, {"state": "running", "pid": 1, "error": None, "time": 0})
    stale = cache_dir / "features" / ".x.npy.1.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))

    monkeypatch.setenv("HMD_CACHE", str(cache_dir))
    home = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
    warnings = [w.value for w in home.warning]
    assert any(
        "The cache needs attention: 1 damaged run, 1 leftover partial run, 1 temporary file" in w
        for w in warnings
    ), warnings
    assert any(w.startswith(f"Run {trained} is damaged (predictions.csv has 3 bytes") for w in warnings)

    report = core(cache_dir, "doctor", "--json")
    assert report.returncode == 0, report.stderr
    kinds = sorted(f["kind"] for f in json.loads(report.stdout)["findings"])
    assert kinds == ["damaged_run", "leftover_partial", "stale_temporary"]
    fixed = json.loads(core(cache_dir, "doctor", "--fix", "--json").stdout)
    assert len(fixed["repaired"]) == 3
    after = json.loads(core(cache_dir, "doctor", "--json").stdout)["findings"]
    assert [f["kind"] for f in after] == ["quarantined"], "only the record of what was set aside is left"
    assert "nothing needs attention" in core(cache_dir, "doctor").stdout


# --- a sweep killed at random moments -----------------------------------------------------------


@pytest.mark.train
def test_a_sweep_killed_at_random_moments_ends_as_if_never_killed(tiny_data, tmp_path):
    args = [
        "sweep",
        "--data",
        str(tiny_data),
        "--seeds",
        "1",
        "--image-size",
        "64",
        "--epochs",
        "3",
        "--json",
    ]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    expected = [r["run_id"] for r in json.loads(core(reference, *args).stdout)]
    rng = np.random.default_rng(7)
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "--cache", str(killed), *args],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(2.0, 9.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = core(killed, *args)
    assert finished.returncode == 0, finished.stderr
    assert [r["run_id"] for r in json.loads(finished.stdout)] == expected
    for rid in expected:
        mine = runs.complete_dir(killed, rid).predictions.read_bytes()
        assert mine == runs.complete_dir(reference, rid).predictions.read_bytes(), rid
    assert not [f for f in doctor.check(killed) if f.kind == "damaged_run"]
