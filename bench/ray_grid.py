"""The same warm grid (features cached) through a local 2-node Ray cluster (a head and a second
node, one CPU each) against the local executor, and where the Ray side's time goes; then the
same runs queued as the dashboard queues them, trained by its worker on the cluster against
its worker here."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from unittest import mock

from bench.grid import BASE, QUICK_SLICES
from bench.measure import Row, timed
from core.data.splits import ORIGINAL_SLICES
from core.engine.pipeline import sweep
from core.serving import jobs
from core.serving.ray_executor import RayOptions, connect
from core.serving.ray_executor import sweep as ray_sweep
from core.store import runs
from core.store.config import ORIGINAL_SEEDS, grid


def run(cache: Path, full: bool) -> list[Row]:
    import ray
    from ray.cluster_utils import Cluster

    slices, seeds = (ORIGINAL_SLICES, ORIGINAL_SEEDS) if full else (QUICK_SLICES, (1, 2, 3))
    sweep(BASE, slices, seeds, cache)  # features cached, as in a warm grid
    shutil.rmtree(runs.runs_dir(cache))
    _, local = timed(lambda: sweep(BASE, slices, seeds, cache))
    shutil.rmtree(runs.runs_dir(cache))
    # Ray's sessions and logs in the bench's scratch folder, removed with it, not left in /tmp/ray
    with mock.patch.dict(os.environ, {"RAY_TMPDIR": str(cache.parent / "ray-tmp")}):
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            nodes.add_node(num_cpus=1)
            nodes.wait_for_nodes()
            options = RayOptions(address=nodes.address)
            _, joining = timed(lambda: connect(options))
            _, on_ray = timed(lambda: ray_sweep(BASE, slices, seeds, cache, options))
            queue_local = _queue(cache, slices, seeds, {"HMD_EXECUTOR": "local"})
            address = {"HMD_EXECUTOR": "ray", "HMD_RAY_ADDRESS": nodes.address}
            queue_ray = _queue(cache, slices, seeds, address)
        finally:
            ray.shutdown()
            nodes.shutdown()
    count = len(slices) * len(seeds)
    note = (
        f"{count} runs, 2 nodes x 1 CPU on this machine; joining the cluster took {joining:.1f} s "
        "more (not counted); each task starts a Ray worker that imports torch and Lightning"
    )
    return [
        Row(
            "grid on Ray",
            "warm grid, Ray cluster vs local executor",
            on_ray,
            local,
            "s",
            better="lower",
            note=note,
        ),
        Row(
            "grid on Ray",
            "dashboard queue, worker on the Ray cluster vs worker here",
            queue_ray,
            queue_local,
            "s",
            better="lower",
            note=f"the same {count} runs queued as a page queues them, heads dealt into a task per slot; "
            "the cluster's Ray workers were started by the row above (a cold start adds their imports)",
        ),
    ]


def _queue(cache: Path, slices, seeds, env: dict[str, str]) -> float:
    """Seconds for the dashboard's worker to train ``slices`` x ``seeds`` queued at once (no
    run cached), with the executor ``env`` sets."""
    shutil.rmtree(runs.runs_dir(cache), ignore_errors=True)
    jobs.clear_finished(cache)
    jobs.submit(cache, grid(BASE, list(slices), list(seeds)), start_worker=False)
    with mock.patch.dict(os.environ, env):
        _, seconds = timed(lambda: jobs.work(cache, idle_exit_s=0))
    return seconds
