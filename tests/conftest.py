"""Shared fixtures: a tiny real dataset (Fashion-MNIST PNGs from data/), an empty cache."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from core.base.locks import wait_lock
from core.base.paths import DEFAULT_DATA
from core.serving import jobs

TINY_CLASSES = ("Trouser", "Bag", "Sneaker")
TINY_PER_CLASS = 12
CURVE_CLASSES = ("T-shirt_top", "Pullover", "Coat", "Shirt")


def copy_sample(source: Path, target: Path, classes, per_class: int, offset: int = 0) -> Path:
    """Copy ``per_class`` real images of each class from the bundled dataset."""
    for name in classes:
        (target / name).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / name).iterdir())[offset : offset + per_class]:
            shutil.copy(path, target / name / path.name)
    return target


# Every module that takes 8 s or more, longest first, as measured on 2 cores (the seconds of its
# tests' set-up, call and tear-down, summed per module, in a `make test` run): collected in this
# order, and make test keeps it (pytest-xdist's --no-loadscope-reorder; by default it hands out
# the modules with the most tests first), so that the long modules start early and the last to
# start are short, instead of a minute-long module trailing alone while the other worker idles.
SLOWEST_FIRST = (
    "test_ray.py",
    "test_e2e.py",
    "test_budget.py",
    "test_runs.py",
    "test_reliability.py",
    "test_cli.py",
    "test_next_batch_page.py",
    "test_audit.py",
    "test_next_batch.py",
    "test_e2e_upload.py",
    "test_cam_cancel.py",
    "test_pipeline.py",
    "test_every_page.py",
    "test_tracker.py",
    "test_page_values.py",
    "test_jobs.py",
    "test_sign_in.py",
    "test_pages.py",
    "test_curves.py",
    "test_present.py",
    "test_ray_auth.py",
    "test_cam_requests.py",
    "test_trust.py",
    "test_sidebar.py",
    "test_nextbatch_simulate.py",
    "test_cam.py",
    "test_access.py",
    "test_feature_backends.py",
    "test_report_pdf.py",
    "test_remedy.py",
    "test_app.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a test that reads the trained curve sweep trains it (once a session): the fast tier skips it
    unmarked = [
        item.nodeid
        for item in items
        if "curve_cache" in getattr(item, "fixturenames", ())
        and not any(item.get_closest_marker(mark) for mark in ("train", "browser"))
    ]
    if unmarked:
        raise pytest.UsageError(f"mark these @pytest.mark.train, they use curve_cache: {', '.join(unmarked)}")
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


@pytest.fixture(scope="session", autouse=True)
def ray_temp():
    """Ray's temporary folder (its sessions, logs and the record of the cluster ``ray start``
    made) in a folder of the test session's own, removed at the end: no test leaves anything in
    /tmp/ray. Short, for the Unix sockets Ray makes inside it."""
    temp = tempfile.mkdtemp(prefix="hmd-ray-", dir="/tmp")
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    yield Path(temp)
    if before is None:
        os.environ.pop("RAY_TMPDIR", None)
    else:
        os.environ["RAY_TMPDIR"] = before
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """3 classes x 12 real images: holdout 1, validation 1, training pool 10 per class."""
    return copy_sample(DEFAULT_DATA, tmp_path_factory.mktemp("tiny"), TINY_CLASSES, TINY_PER_CLASS)


@pytest.fixture(scope="session")
def other_data(tmp_path_factory) -> Path:
    """Different images of the same 3 classes, for evaluating a run on another folder."""
    return copy_sample(DEFAULT_DATA, tmp_path_factory.mktemp("other"), TINY_CLASSES, 8, offset=100)


@pytest.fixture
def cache_dir(tmp_path_factory) -> Path:
    """An empty cache, outside ``tmp_path`` so that it is never mistaken for a class folder."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """A cache shared by tests that only read runs, so each run trains once per session."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def no_downloads(monkeypatch, tmp_path_factory) -> None:
    """An empty torch weights cache and every download sent to a closed local port: what a
    machine without internet sees, without touching the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("NO_PROXY", "")
    # urllib builds its shared opener, with these proxies, on first use: not for later tests
    monkeypatch.setattr(urllib.request, "_opener", None)


def built_once(tmp_path_factory, worker_id: str, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``build`` fills, made once per test session: with pytest-xdist, one worker
    builds it in the session's shared temporary folder while the others wait, and all read the
    same one (the same path too: a learning curve selects its runs by their dataset's path)."""
    if worker_id == "master":  # not under xdist
        target = tmp_path_factory.mktemp(name)
        build(target)
        return target
    root = tmp_path_factory.getbasetemp().parent
    target, built = root / name, root / f"{name}.built"
    with wait_lock(root / f"{name}.lock", 1800, lambda pid: None) as held:
        assert held, f"another worker held {name} for 30 minutes"
        if not built.exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            built.touch()
    return target


@pytest.fixture(scope="session")
def curve_data(tmp_path_factory, worker_id) -> Path:
    """4 look-alike classes x 150 real images: holdout 15 and validation 15 per class, pools of
    120, so a learning curve has 12 slices and room to rise (the tiny set's 3 holdout images do not)."""
    return built_once(
        tmp_path_factory,
        worker_id,
        "curve",
        lambda target: copy_sample(DEFAULT_DATA, target, CURVE_CLASSES, 150),
    )


@pytest.fixture(scope="session")
def curve_cache(curve_data, tmp_path_factory, worker_id) -> Path:
    """The learning-curve sweep of ``curve_data``: 1, 2, 3, 5, 8, 13, 20, 30, 50, 80/class over
    sample seeds 1 to 3 and 100% once, trained through the CLI contract, once per test session.
    Tests copy it to write. Its learning curve is fitted once here, so that every copy, and
    every command and page asked of it, reads the kept fit (cache/fits/) instead of refitting."""
    from core.answers import budget
    from tests.command import CURVE_SWEEP, core

    def sweep(cache: Path) -> None:
        done = core(cache, *CURVE_SWEEP, "--data", str(curve_data))
        assert done.returncode == 0, done.stderr
        budget.analyse(budget.select(cache, curve_data))

    return built_once(tmp_path_factory, worker_id, "curve-cache", sweep)


@pytest.fixture
def stop_worker_after(cache_dir):
    """Cancel whatever is still queued or running when the test ends, passed or failed, so that
    no worker goes on training in the background."""
    yield
    for job in jobs.list_jobs(cache_dir):
        if job.state in ("queued", "running"):
            jobs.cancel(cache_dir, job.id)
