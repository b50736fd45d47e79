"""CAMs drawn by a worker process of their own: asked twice, drawn once; followed; cancelled."""

from __future__ import annotations

import shutil
import time

import pytest

from core.engine.pipeline import train_run
from core.serving import cam_requests
from core.store import runs
from tests.quick import quick_run

pytestmark = pytest.mark.train


def wait(cache, key, timeout=180.0) -> cam_requests.Status:
    deadline = time.monotonic() + timeout
    while not (status := cam_requests.status(cache, key)).finished:
        assert time.monotonic() < deadline, "the CAM worker did not finish"
        time.sleep(0.3)
    return status


@pytest.fixture
def run(tiny_data, shared_cache, tmp_path):
    rid = train_run(quick_run(tiny_data, slice="100%"), shared_cache).summary.run_id
    cache = tmp_path / "cams"
    shutil.copytree(shared_cache, cache, ignore=shutil.ignore_patterns("cams"))
    return cache, rid


def test_a_request_is_drawn_by_the_worker_once(run):
    cache, rid = run
    images = [int(i) for i in runs.load(cache, rid).predictions().image_index]
    items = [(rid, i, 0) for i in images]
    key = cam_requests.request(cache, items, "gradcam")
    assert cam_requests.request(cache, items, "gradcam") == key, "asked twice, one request"
    status = wait(cache, key)
    assert (status.done, status.total, status.error) == (len(items), len(items), None)
    assert cam_requests.missing(cache, items, "gradcam") == []


def test_a_slow_request_can_be_cancelled(run):
    cache, rid = run
    images = [int(i) for i in runs.load(cache, rid).predictions().image_index]
    items = [(rid, i, c) for i in images for c in range(3)]  # nine ScoreCAMs: seconds each on a CPU
    key = cam_requests.request(cache, items, "scorecam")
    deadline = time.monotonic() + 120
    while cam_requests.status(cache, key).done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cam_requests.cancel(cache, key)
    status = wait(cache, key)
    assert status.error == "cancelled" and status.done < len(items)
    assert cam_requests.missing(cache, items, "scorecam"), "it stopped before drawing them all"
