"""Grids and the dashboard's queue on a real Ray cluster: a head and a second node, as local
processes on this machine's own address (Ray's drivers do not join a cluster bound to
127.0.0.1). Same run ids and predictions as the local executor, a Ray worker killed mid-run is
retried with nothing falsely complete, and the queue runs its jobs there."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.base.locks import holder
from core.base.paths import PROJECT_ROOT
from core.serving import jobs
from core.store import runs
from tests.browser import (
    ADAMW,
    browser_page,
    choose,
    choose_dataset,
    launch,
    need_chromium,
    screenshot,
    serve,
    visit,
)
from tests.command import core, core_process
from tests.quick import quick_run

GRID = ["--slices", "1/class,3/class,5/class", "--seeds", "1,2", "--image-size", "64"]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()


def _sweep(cache: Path, data: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "--cache",
            str(cache),
            "sweep",
            "--data",
            str(data),
            *GRID,
            *extra,
            "--json",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _trainer_now(cache: Path, not_pid: int) -> int | None:
    """A process holding a run's lock (a Ray worker, training it), if any."""
    for lock in (cache / "runs" / ".partial").glob("*.lock"):
        pid = holder(lock)
        if pid and pid != not_pid and runs.is_locked(cache, lock.stem):
            return pid
    return None


def _training_pid(cache: Path, not_pid: int, timeout: float = 240.0) -> int:
    """The process holding a run's lock (a Ray worker, training it), once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid := _trainer_now(cache, not_pid):
            return pid
        time.sleep(0.05)
    raise AssertionError("no run started training on the cluster")


@pytest.mark.train
def test_a_grid_on_two_ray_nodes_matches_the_local_executor_though_a_worker_is_killed(
    cluster, tiny_data, tmp_path_factory
):
    local_cache, ray_cache = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("on-ray")
    local = core(local_cache, "sweep", "--data", str(tiny_data), *GRID, "--epochs", "30", "--json")
    assert local.returncode == 0, local.stderr
    expected = json.loads(local.stdout)

    on_ray = _sweep(ray_cache, tiny_data, "--epochs", "30", "--executor", "ray", "--address", cluster.address)
    killed = _training_pid(ray_cache, not_pid=on_ray.pid)
    os.kill(killed, signal.SIGKILL)
    out, err = on_ray.communicate(timeout=600)
    assert on_ray.returncode == 0, err
    got = json.loads(out)

    assert [r["run_id"] for r in got] == [r["run_id"] for r in expected]
    assert len({r["run_id"] for r in got}) == 6
    for record in got:
        folder = runs.load(ray_cache, record["run_id"]).folder
        assert runs.problem(folder, deep=True) is None, "every run complete, and whole"
        same = runs.load(local_cache, record["run_id"]).folder.predictions.read_bytes()
        assert folder.predictions.read_bytes() == same, "the same predictions, bit for bit"
    assert not list((ray_cache / "runs" / ".partial").glob("*/summary.json")), "no half-run left"


@pytest.mark.train
@pytest.mark.browser
def test_the_train_page_runs_its_queue_on_the_cluster_with_live_progress_though_a_worker_is_killed(
    cluster, tiny_data, cache_dir, monkeypatch, stop_worker_after
):
    """In Chromium, with the dashboard set to hand its queue to the cluster: the Train page
    says where runs train and shows a run's epochs and time left while a Ray worker trains it
    (read from the run's files as they are written); a Ray worker killed mid-run has its task
    run again, and every run ends complete and whole."""
    need_chromium()
    monkeypatch.setenv("HMD_EXECUTOR", "ray")
    monkeypatch.setenv("HMD_RAY_ADDRESS", cluster.address)
    with serve(cache_dir) as url, browser_page() as page:
        choose_dataset(page, url, tiny_data, "36 readable images in 3 classes")

        visit(page, url, "Train", "Launch")
        page.get_by_text(f"on the Ray cluster at {cluster.address}").wait_for(timeout=30_000)
        page.get_by_text("Hyper-parameters").click()
        page.get_by_label("Epochs", exact=True).fill("80")  # a few seconds a run on 2 cores: progress to see
        page.get_by_label("Image size (px)", exact=True).fill("64")
        # AdamW epochs: an L-BFGS head converges in a few rounds, too soon to watch
        choose(page, ADAMW)
        launch(page, cache_dir, "Launch", "4 runs queued, 0 already cached")
        # the first Ray worker to hold a run is killed at once: its task runs again
        os.kill(_training_pid(cache_dir, not_pid=holder(cache_dir / "jobs" / "worker.lock")), signal.SIGKILL)
        page.get_by_text(re.compile(r"epoch \d+/80, step \d+/\d+, about \d+ s left")).first.wait_for(
            timeout=240_000
        )
        screenshot(page, "ray-train-live")
        page.get_by_text("Finished: 4").wait_for(timeout=300_000)
        screenshot(page, "ray-train-finished")
    queued = jobs.list_jobs(cache_dir)
    assert [job.state for job in queued] == ["complete"] * 4
    log = (cache_dir / "jobs" / "worker.log").read_text()
    assert "4 jobs started as 2 Ray tasks" in log, "heads on the same features share a task per slot"
    for job in queued:
        assert runs.problem(runs.load(cache_dir, job.run_id).folder, deep=True) is None, "every run whole"
    assert not list((cache_dir / "runs" / ".partial").glob("*/summary.json")), "no half-run left"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--address", "127.0.0.1:6379"],
            {},
            "--address, --gpus-per-run and --cpus-per-run need --executor ray",
        ),
        (["--executor", "ray", "--address", "127.0.0.1:1"], {}, "no Ray cluster at 127.0.0.1:1"),
        (["--executor", "ray", "--address", "nowhere"], {}, "--address must be host:port"),
        (["--executor", "ray", "--cpus-per-run", "0"], {}, "--cpus-per-run more than 0"),
        ([], {"HMD_EXECUTOR": "spark"}, "HMD_EXECUTOR"),
    ],
)
def test_executor_flags_fail_in_one_line_before_anything_runs(
    tiny_data, cache_dir, monkeypatch, args, env, message
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = core_process(cache_dir, "sweep", "--data", str(tiny_data), *GRID, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.strip().splitlines()[-1]
    assert not (cache_dir / "runs").exists() or not any((cache_dir / "runs").iterdir())


def test_heads_that_share_features_are_dealt_into_one_task_per_cluster_slot(tiny_data):
    """Six heads on two slots: two tasks of three, small and large slices in each; a fine-tune
    and a head on other features are tasks of their own."""
    from core.serving.ray_executor import _tasks

    heads = [
        quick_run(tiny_data, slice=s, seed=seed) for s in ("1/class", "3/class", "100%") for seed in (1, 2)
    ]
    configs = [*heads, quick_run(tiny_data, mode="finetune"), quick_run(tiny_data, image_size=96)]
    tasks = _tasks(configs, slots=2)
    assert sorted(tasks) == [[0, 2, 4], [1, 3, 5], [6], [7]]
    assert sorted(_tasks(configs, slots=16)) == [[k] for k in range(8)], "one head per slot"
    many = [quick_run(tiny_data, seed=seed) for seed in range(130)]
    assert [len(task) for task in _tasks(many, slots=2)] == [44, 43, 43], "at most one fit's heads a task"


@pytest.fixture
def dead_cluster_record(monkeypatch):
    """Ray's temporary folder holding the record of a cluster whose processes have died (what
    a killed ``ray start --head`` leaves): a port that nothing listens on. Ray puts the local
    instance's session there too, so the test leaves nothing in /tmp/ray."""
    import shutil
    import socket
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="hmd-ray-", dir="/tmp"))  # short: Ray's socket paths
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    (temp / "ray").mkdir()
    (temp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")
    monkeypatch.setenv("RAY_TMPDIR", str(temp))
    monkeypatch.delenv("HMD_RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield f"127.0.0.1:{port}"
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.train
def test_a_sweep_without_an_address_reports_a_dead_recorded_cluster_and_runs_locally(
    tiny_data, cache_dir, dead_cluster_record
):
    started = time.monotonic()
    done = core_process(
        cache_dir,
        "sweep",
        "--data",
        str(tiny_data),
        "--slices",
        "1/class",
        "--seeds",
        "1",
        "--image-size",
        "64",
        "--executor",
        "ray",
        "--json",
        timeout=120,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert f"no Ray cluster at {dead_cluster_record}" in done.stderr
    assert "starting a local Ray instance instead" in done.stderr
    (record,) = json.loads(done.stdout)
    assert runs.problem(runs.load(cache_dir, record["run_id"]).folder, deep=True) is None
    print(f"sweep with a dead recorded cluster: {took:.1f} s")


def test_joining_a_dead_recorded_cluster_with_auto_fails_in_one_line(
    tiny_data, cache_dir, dead_cluster_record
):
    done = core_process(
        cache_dir,
        "sweep",
        "--data",
        str(tiny_data),
        *GRID,
        "--executor",
        "ray",
        "--address",
        "auto",
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert f"no Ray cluster at {dead_cluster_record}" in last and "ray_current_cluster" in last
