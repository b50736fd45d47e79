"""Runs as Ray tasks: a grid or the dashboard's queue spread over a Ray cluster.

Every node must see the same cache folder and the dataset folders at the same paths (a shared
filesystem: NFS, a cluster filesystem, or one machine); the ``core`` package travels with the
job, the Python environment (torch, lightning, ...) must be installed on every node. A task
calls :func:`core.engine.pipeline.train_together`, the same function as the local executor, so run
ids, folders and predictions are the same; the run's files are its record, and a run is
complete only once its folder is committed, whichever node trained it.

- Features first: each (dataset, backbone, size, backend) that a grid's frozen runs read is
  extracted by one task before the heads that need it, so no two nodes compute it twice.
- Heads together: the runs that could train their heads together
  (:func:`core.engine.pipeline.head_group`) are dealt into one task per slot of the cluster, each
  task training its share in one fit; a run's predictions do not depend on its companions.
- A worker or node that dies mid-run: Ray runs the task again elsewhere (up to
  :data:`RETRIES` times); the dead attempt left an uncommitted folder, which the next one
  replaces (the run lock died with its process).

This is the only module that imports Ray.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UserError
from core.base.progress import progress
from core.data.datasets import scan
from core.engine.pipeline import (
    HEADS_PER_FIT,
    Result,
    grid_runs,
    head_group,
    prepare,
    run_inputs,
    train_together,
)
from core.store.config import RunConfig, uses_features
from core.store.record import Summary

RETRIES = 3
AUTH_MODE = "RAY_AUTH_MODE"
NO_TOKEN = (
    "if the cluster asks for a token, as `ray start` makes it do since Ray 2.59, put its "
    "token in ~/.ray/auth_token or RAY_AUTH_TOKEN here"
)


@dataclass(frozen=True)
class RayOptions:
    """Where and with what each run is placed. ``address``: a cluster's ``host:port`` (or
    ``auto``); ``None`` takes ``HMD_RAY_ADDRESS``, and without it a Ray instance is started on
    this machine for the duration of the command."""

    address: str | None = None
    gpus_per_run: float = 0.0
    cpus_per_run: float = 1.0

    def __post_init__(self) -> None:
        if self.gpus_per_run < 0 or self.cpus_per_run <= 0:
            raise UserError(
                f"--gpus-per-run must be 0 or more and --cpus-per-run more than 0, not "
                f"{self.gpus_per_run:g} and {self.cpus_per_run:g}"
            )
        if self.address not in (None, "auto"):
            _check_form(self.address)  # at once, before Ray or torch is imported


def connect(options: RayOptions) -> None:
    """Join the cluster (once per process), shipping the ``core`` package to its workers.

    Raises:
        UserError: no cluster answers at the address.
    """
    address = _address(options)
    named = address not in (None, "auto")
    if named and "ray" not in sys.modules:
        _send_token_if_any()  # before Ray is imported: it reads RAY_AUTH_MODE once, then
    import ray

    if ray.is_initialized():
        return
    if named:
        _check_reachable(address)
    else:
        address = _recorded_cluster_or_local(address)
    package = str(Path(__file__).resolve().parents[1])  # the whole core package
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            runtime_env={"py_modules": [package], "excludes": ["__pycache__"]},
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = "" if os.environ.get(AUTH_MODE) == "token" else f" ({NO_TOKEN})"
        raise UserError(f"no Ray cluster at {address or 'this machine'}: {first}{hint}") from None


def _address(options: RayOptions) -> str | None:
    return options.address or os.environ.get("HMD_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or None


def _check_cluster_first(options: RayOptions) -> None:
    """A cluster to join that does not answer is reported before the grid is prepared (its
    features extracted: minutes on a large dataset), by the same socket probes as :func:`connect`.

    Raises:
        UserError: the named cluster, or with ``auto`` the recorded one, does not answer.
    """
    address = _address(options)
    if address == "auto":
        _recorded_cluster_or_local(address)
    elif address is not None:
        _check_reachable(address)


def recorded_cluster_file() -> Path:
    """Where ``ray start`` records the cluster that ``ray.init()`` without an address joins
    (Ray's temporary folder: ``RAY_TMPDIR``, else ``TMPDIR``, else ``/tmp``)."""
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return Path(temp) / "ray" / "ray_current_cluster"


def _recorded_cluster_or_local(address: str | None) -> str | None:
    """Probe the cluster this machine's record names before Ray joins it: Ray waits forever
    on one whose processes have died. Without an address a dead one is reported and a local
    instance started; with ``auto`` (join, do not start) it is an error.

    Raises:
        UserError: ``auto`` and the recorded cluster does not answer.
    """
    record = recorded_cluster_file()
    try:
        recorded = record.read_text().strip()
    except OSError:  # no record: Ray starts a local instance (None) or finds none (auto)
        return address
    try:
        _check_reachable(recorded, timeout_s=2.0)
    except UserError as dead:
        if address == "auto":
            raise UserError(
                f"{dead} (recorded in {record}; start it again with `ray start --head`)"
            ) from None
        print(f"{dead} (recorded in {record}); starting a local Ray instance instead", file=sys.stderr)
        return "local"
    return address


def _send_token_if_any() -> None:
    """Authenticate to a cluster named by address when a token is at hand. A cluster started
    by ``ray start`` asks for a token, but Ray's own driver sends one to an explicit address
    only when ``RAY_AUTH_MODE=token``; it does so on its own only for a cluster it finds
    locally. A cluster that asks for none accepts a driver that sends one."""
    if os.environ.get(AUTH_MODE) is not None:
        return
    default = Path.home() / ".ray" / "auth_token"
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or default.exists():
        os.environ[AUTH_MODE] = "token"


def _check_form(address: str) -> tuple[str, str]:
    """``host`` and ``port`` of ``host:port``.

    Raises:
        UserError: not of that form.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address must be host:port (or auto), not '{address}'")
    return host, port


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail at once on an address where nothing listens (Ray itself retries for minutes).

    Raises:
        UserError: not ``host:port``, or no answer there.
    """
    import socket

    host, port = _check_form(address)
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UserError(f"no Ray cluster at {address}: {error.strerror or error}") from None


def _task(function: Callable, options: RayOptions):
    import ray

    return ray.remote(
        num_cpus=options.cpus_per_run,
        num_gpus=options.gpus_per_run,
        max_retries=RETRIES,
        retry_exceptions=False,
    )(function)


def _features(config: dict, cache_dir: str) -> str | None:
    """Extract (or find cached) the features a frozen run reads; the backend that did."""

    prepared = prepare(RunConfig.from_dict(config), Path(cache_dir))
    return run_inputs(prepared.config, prepared.dataset, Path(cache_dir)).backend


def _train(configs: list[dict], cache_dir: str) -> list[dict]:
    """Runs of one dataset, from the cache or trained now; heads that share features together."""

    cache, requested = Path(cache_dir), [RunConfig.from_dict(c) for c in configs]
    dataset = scan(requested[0].data, cache)
    prepared = [prepare(config, cache, dataset=dataset) for config in requested]
    return [result.to_dict() for result in train_together(prepared, cache)]


def _tasks(configs: list[RunConfig], slots: int) -> list[list[int]]:
    """Which runs (indices into ``configs``) each task trains: the runs of a head group dealt
    round-robin into one task per slot (a grid lists slices in order, so each task gets small
    and large ones), or more where a task would hold more than ``HEADS_PER_FIT`` heads; every
    other run a task of its own."""

    tasks, groups = [], {}
    for i, config in enumerate(configs):
        key = head_group(config)
        if key is None:
            tasks.append([i])
        else:
            groups.setdefault(key, []).append(i)
    for members in groups.values():
        n = max(min(slots, len(members)), -(-len(members) // HEADS_PER_FIT))
        tasks += [members[k::n] for k in range(n)]
    return tasks


def _slots(options: RayOptions) -> int:
    """How many tasks the cluster runs at once, each holding its reservation."""
    import ray

    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / options.cpus_per_run
    if options.gpus_per_run:
        slots = min(slots, resources.get("GPU", 0.0) / options.gpus_per_run)
    return max(1, int(slots))


def _completed(refs: list) -> Iterator:
    """``refs`` one by one as their tasks finish."""
    import ray

    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield done[0]


def _result(ref):
    """A task's value; a task that raised raises its own error here (a UserError as one)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        if isinstance(cause, UserError):  # DiskFull too
            raise UserError(str(cause)) from None
        raise (cause if isinstance(cause, BaseException) else error) from error


def sweep(
    base: RunConfig,
    slices: Iterable[str],
    seeds: Iterable[int],
    cache_dir: Path,
    options: RayOptions,
    show_progress: bool = False,
    sample_seeds: Iterable[int] | None = None,
) -> list:
    """:func:`core.engine.pipeline.grid_runs` on Ray, the features they share extracted first and heads
    dealt into tasks (:func:`_tasks`); their :class:`core.engine.pipeline.Result`, in order.

    Raises:
        UserError: no cluster, or a run's configuration or data is bad.
    """

    _check_cluster_first(options)
    prepared = grid_runs(base, slices, seeds, cache_dir, show_progress, sample_seeds)
    return run_configs([p.config for p in prepared], cache_dir, options, show_progress)


def run_configs(
    configs: list[RunConfig], cache_dir: Path, options: RayOptions, show_progress: bool = False
) -> list:
    """Every run of ``configs`` (resolved, see :func:`core.engine.pipeline.prepare`) on Ray."""

    connect(options)  # first: Ray is imported there
    import ray

    cache = str(Path(cache_dir).resolve())
    extract = _task(_features, options)
    needed = {(c.data, c.backbone, c.image_size, c.features): c for c in configs if uses_features(c)}.values()
    features = [extract.remote(c.to_dict(), cache) for c in needed]
    for ref in progress(_completed(features), "features on Ray", len(features), show_progress, "dataset"):
        _result(ref)
    train = _task(_train, options)
    tasks = _tasks(configs, _slots(options))
    refs = [train.remote([configs[i].to_dict() for i in task], cache) for task in tasks]
    try:
        for ref in progress(_completed(refs), "sweep on Ray", len(refs), show_progress, "task"):
            _result(ref)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    records = {
        i: r for task, ref in zip(tasks, refs, strict=True) for i, r in zip(task, ray.get(ref), strict=True)
    }
    return [Result(Summary.from_dict(records[i]), cached=records[i]["cached"]) for i in range(len(configs))]


def submit_jobs(
    queued: list, cache_dir: Path, options: RayOptions, train: Callable[[Path, list], list]
) -> dict:
    """Start queued dashboard jobs as tasks of ``train`` (the queue's own
    :func:`core.serving.jobs.outcomes`, passed in: the queue sits above this adapter), dealt as a
    sweep's runs are (:func:`_tasks`); each task's handle, for :func:`task_result`, and its jobs."""
    connect(options)
    task = _task(train, options)
    cache = Path(cache_dir).resolve()
    groups = [[queued[i] for i in task_] for task_ in _tasks([job.config for job in queued], _slots(options))]
    return {task.remote(cache, group): group for group in groups}


def ready(handles: list, timeout: float) -> list:
    """The handles whose tasks finished, waiting up to ``timeout`` seconds for the first."""
    import ray

    if not handles:
        return []
    done, _ = ray.wait(handles, num_returns=len(handles), timeout=timeout)
    return done


def task_result(handle) -> list:
    """A finished task's value (its jobs' records).

    Raises:
        UserError: the task failed: its own error, or the task died for good (:data:`RETRIES`
            + 1 times: out of memory, a lost node), in one line.
    """
    try:
        return _result(handle)
    except UserError:
        raise
    except Exception as error:  # whatever killed the task, named in the jobs' records
        raise UserError(f"on Ray: {type(error).__name__}: {error}".splitlines()[0]) from error


def cancel(handles: list) -> None:
    import ray

    for handle in handles:
        ray.cancel(handle, force=True)
