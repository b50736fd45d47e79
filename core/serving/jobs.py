"""The training queue and the worker process that empties it, for the dashboard.

The dashboard never trains in its own process: it writes jobs to disk and makes sure one
worker (``python -m core worker``, in its own session) is running. Everything lives in files,
so closing the browser or restarting Streamlit loses nothing::

    cache/jobs/queue/<seq>-<run_id>.json    waiting, oldest first
    cache/jobs/active/<seq>-<run_id>.json   being trained now
    cache/jobs/done/<seq>-<run_id>.json     complete, cached, failed or cancelled
    cache/jobs/worker.lock                  held by the live worker (the OS drops it on death)
    cache/jobs/worker.log                   the worker's output

A job is never lost: it leaves ``active/`` only once its finished record is written (a full
disk gives up the cache's reserve file for that), and a worker that is stopped (SIGTERM,
Ctrl+C) puts its job back on the queue. A worker killed outright (kill -9, out of memory)
leaves its job in ``active/``; the next worker queues it again, and fails it only after
:data:`MAX_ATTEMPTS` such deaths, so one run that kills its worker cannot block the queue.

Progress and live curves of the active job are the run's own files (see :mod:`core.store.runs`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.base import background
from core.base.errors import DiskFull, RunCancelled, UserError, check_choice
from core.base.locks import is_held, try_lock, wait_lock
from core.base.paths import (
    check_writable,
    disk_full,
    is_disk_full,
    quarantine,
    read_json,
    read_only_reason,
    release_reserve,
    write_json,
)
from core.base.progress import Reporter, Stage, read_stage, reporting, stage_writer
from core.base.words import counted
from core.data.datasets import scan
from core.data.splits import SliceSpec, make_splits
from core.engine.pipeline import HEADS_PER_FIT, head_group, prepare, train_heads, train_run
from core.serving import ray_executor
from core.store import runs
from core.store.config import RunConfig, run_id
from core.store.record import Progress, read_progress

MAX_ATTEMPTS = 3
MIN_FREE_BYTES = 4 << 20  # below this a worker is not started: it could record nothing
FINISHED = ("complete", "cached", "failed", "cancelled")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    id: str
    run_id: str
    config: RunConfig
    state: str  # queued, running, or one of FINISHED
    submitted: float
    finished: float | None = None
    error: str | None = None
    attempts: int = 0  # workers that died while training it

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, record: dict) -> Job:
        """A job as written by :meth:`to_dict` (keys this version does not know are ignored).

        Raises:
            ValueError: a required field is missing or malformed.
        """
        try:
            return cls(
                id=str(record["id"]),
                run_id=str(record["run_id"]),
                config=RunConfig.from_dict(record["config"]),
                state=str(record.get("state", "queued")),
                submitted=float(record["submitted"]),
                finished=record.get("finished"),
                error=record.get("error"),
                attempts=int(record.get("attempts", 0)),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a job record ({type(error).__name__}: {error})") from None


def _dir(cache_dir: Path, name: str) -> Path:
    folder = cache_dir / "jobs" / name
    if read_only_reason() is None:  # a read-only page only lists: a missing folder globs as empty
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _read(path: Path, state: str | None) -> Job | None:
    """The job in ``path``; ``state`` is its folder's (queued, running), which is what counts:
    a record keeps the state it had when written. Finished jobs (``None``) carry their own.
    A file that is not a job is moved to the cache's quarantine (files are written whole, so
    it will never become one); ``None`` then, and when the file moved away meanwhile."""
    try:
        job = Job.from_dict(read_json(path))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, OSError) as error:
        _quarantine(path, error)
        return None
    return dataclasses.replace(job, state=state or job.state)


def _quarantine(path: Path, error: Exception) -> None:
    cache_dir = path.parent.parent.parent
    if read_only_reason() is not None:  # a viewer's page leaves it for an editor's or the CLI
        return
    try:
        target = quarantine(cache_dir, path)
    except FileNotFoundError:
        return
    print(f"warning: job file {path} is unreadable ({error}); moved to {target}", file=sys.stderr)


def _write(folder: Path, job: Job) -> None:
    write_json(folder / f"{job.id}.json", job.to_dict())


def submit(cache_dir: Path, configs: list[RunConfig], start_worker: bool = True) -> list[Job]:
    """Queue runs; runs already cached are recorded as cached at once, runs already queued or
    running are not queued twice. With ``start_worker``, a worker is started if none runs.

    Raises:
        UserError: a configuration is invalid (nothing is queued then).
        ReadOnly: writes are switched off here (a viewer).
    """

    check_writable()
    scanned: dict[str, object] = {}
    planned = []
    for config in configs:
        dataset = scanned.get(config.data) or scan(config.data, cache_dir)
        scanned[config.data] = dataset
        prepared = prepare(config, cache_dir, dataset=dataset)
        planned.append((prepared.config, run_id(prepared.config, dataset.fingerprint)))
    # two tabs launching the same runs at once: the second must see the first's jobs
    with _submitting(cache_dir):
        waiting = {job.run_id: job for job in list_jobs(cache_dir) if job.state in ("queued", "running")}
        jobs = []
        for resolved, rid in planned:
            if rid in waiting:
                jobs.append(waiting[rid])
                continue
            now = time.time()
            job = Job(
                id=f"{time.time_ns()}-{rid}", run_id=rid, config=resolved, state="queued", submitted=now
            )
            if runs.is_complete(cache_dir, rid):
                job = dataclasses.replace(job, state="cached", finished=now)
                _write(_dir(cache_dir, "done"), job)
            else:
                runs.cancel_path(cache_dir, rid).unlink(missing_ok=True)
                _write(_dir(cache_dir, "queue"), job)
                waiting[rid] = job
            jobs.append(job)
    if start_worker and any(job.state == "queued" for job in jobs):
        ensure_worker(cache_dir)
    return jobs


def drawable(cache_dir: Path, configs: list[RunConfig]) -> tuple[list[RunConfig], dict[str, str]]:
    """The configurations whose slice the dataset can give, and the slices it cannot with why
    (``3/class`` on a class of 4 images, say), so that a grid queues what fits.

    Raises:
        UserError: a dataset is missing or cannot be split at all.
    """

    fits, left_out, splits = [], {}, {}
    for config in configs:
        key = (config.data, *config.split)
        if key not in splits:
            dataset = scan(config.data, cache_dir)
            splits[key] = (dataset, make_splits(dataset.labels, dataset.classes, *key[1:]))
        dataset, split = splits[key]
        try:
            split.slice_indices(SliceSpec.parse(config.slice), 0, dataset.classes)
        except UserError as error:
            left_out[config.slice] = str(error)
        else:
            fits.append(config)
    return fits, left_out


def tally(submitted: list[Job], known_ids: set[str]) -> str:
    """What a submission did, in words: runs newly queued, already waiting or training, and
    already cached. ``known_ids`` are the job ids that existed before it."""
    unique = {job.id: job for job in submitted}.values()
    new = sum(job.state == "queued" and job.id not in known_ids for job in unique)
    pending = sum(job.state in ("queued", "running") and job.id in known_ids for job in unique)
    cached = sum(job.state == "cached" for job in unique)
    text = f"{counted(new, 'run')} queued, {cached} already cached"
    return text + (f", {pending} already waiting or training." if pending else ".")


def submit_and_tally(cache_dir: Path, configs: list[RunConfig]) -> str:
    """Queue ``configs`` (:func:`submit`) and say what that did (:func:`tally`): what every page's
    launch button and the Home page's grid show.

    Raises:
        UserError: a configuration is bad, or the disk is full.
    """
    known = {job.id for job in list_jobs(cache_dir)}
    return tally(submit(cache_dir, configs), known)


def list_jobs(cache_dir: Path) -> list[Job]:
    """Queued (oldest first), then running, then finished (newest first)."""
    found = []
    for name, state in (("queue", "queued"), ("active", "running"), ("done", None)):
        paths = sorted(_dir(cache_dir, name).glob("*.json"), reverse=name == "done")
        found += [job for path in paths if (job := _read(path, state)) is not None]
    return found


def cancel(cache_dir: Path, job_id: str) -> None:
    """Drop a queued job, or stop the running one (its run is then marked cancelled)."""
    check_writable()
    queued = _dir(cache_dir, "queue") / f"{job_id}.json"
    job = _read(queued, "queued")
    if job is not None:
        try:
            queued.unlink()
        except FileNotFoundError:  # the worker claimed it meanwhile: stop it as the active job
            pass
        else:
            _write(_dir(cache_dir, "done"), finished(job, "cancelled"))
            return
    active = _read(_dir(cache_dir, "active") / f"{job_id}.json", "running")
    if active is not None:
        runs.request_cancel(cache_dir, active.run_id)


def retry(cache_dir: Path, job_ids: list[str], start_worker: bool = True) -> list[Job]:
    """Queue failed or cancelled jobs again (their finished records are dropped)."""
    check_writable()
    done = {job.id: job for job in list_jobs(cache_dir) if job.state in ("failed", "cancelled")}
    chosen = [done[i] for i in job_ids if i in done]
    queued = submit(cache_dir, [job.config for job in chosen], start_worker)
    for job in chosen:
        (_dir(cache_dir, "done") / f"{job.id}.json").unlink(missing_ok=True)
    return queued


def clear_finished(cache_dir: Path) -> None:
    for path in _dir(cache_dir, "done").glob("*.json"):
        path.unlink(missing_ok=True)


def finished(job: Job, state: str, error: str | None = None) -> Job:
    return dataclasses.replace(job, state=state, finished=time.time(), error=error)


# --- the worker ------------------------------------------------------------------------------


def _lock_path(cache_dir: Path) -> Path:
    return cache_dir / "jobs" / "worker.lock"


@contextlib.contextmanager
def _submitting(cache_dir: Path) -> Iterator[None]:
    """Held while jobs are queued, and while the worker claims them: two tabs launching the same
    runs at once see each other's jobs, and a grid is claimed whole, never half-written."""
    check_writable()
    with wait_lock(cache_dir / "jobs" / "submit.lock", 60.0, lambda pid: None, poll_s=0.05):
        yield


def worker_alive(cache_dir: Path) -> bool:
    return is_held(_lock_path(cache_dir))


_started: dict[Path, subprocess.Popen] = {}  # the worker this process last started, per cache


def ensure_worker(cache_dir: Path) -> bool:
    """Start a worker in its own session unless one is alive, or the disk is too full for it
    to record anything; True when one was started.

    A worker takes its lock only once Python and the engine are imported, a second or more
    later; the page asks every 1.5 s, so a worker this process started and that has not exited
    counts as alive too.
    """
    check_writable()
    starting = _started.get(cache_dir)
    if worker_alive(cache_dir) or (starting is not None and starting.poll() is None):
        return False
    if shutil.disk_usage(cache_dir).free < MIN_FREE_BYTES:
        return False
    _started[cache_dir] = background.start(cache_dir, "worker", cache_dir / "jobs" / "worker.log")
    return True


def pending(cache_dir: Path) -> bool:
    """Whether any job waits or trains."""
    return any(job.state in ("queued", "running") for job in list_jobs(cache_dir))


def resume(cache_dir: Path) -> bool:
    """Start a worker if jobs wait and none is alive (also takes up a job whose worker died);
    a worker this process started that has exited is reaped, not left a zombie. A read-only
    session starts nothing: the queue waits for an editor's page or the CLI."""
    if read_only_reason() is not None:
        return False
    starting = _started.get(cache_dir)
    if starting is not None and starting.poll() is not None:
        del _started[cache_dir]
    return pending(cache_dir) and ensure_worker(cache_dir)


def executor() -> str:
    """Where the worker trains jobs: ``local`` (here, one by one) or ``ray`` (on the Ray
    cluster at ``HMD_RAY_ADDRESS``), from ``HMD_EXECUTOR``.

    Raises:
        UserError: ``HMD_EXECUTOR`` names neither.
    """
    chosen = os.environ.get("HMD_EXECUTOR") or "local"
    check_choice("HMD_EXECUTOR", chosen, EXECUTORS)
    return chosen


def where() -> str:
    """Where queued runs train, in words, for the Train page.

    Raises:
        UserError: ``HMD_EXECUTOR`` names no executor.
    """
    if executor() == "local":
        return "on this machine: heads on the same features together, other runs one at a time"
    address = os.environ.get("HMD_RAY_ADDRESS") or "a Ray instance started on this machine"
    return f"on the Ray cluster at {address}, all waiting runs at once (HMD_EXECUTOR=ray)"


def work(cache_dir: Path, idle_exit_s: float = 3.0) -> int:
    """Train queued jobs until the queue stays empty (one by one here, or all at once on a Ray
    cluster, see :func:`executor`); returns how many ran.

    Only one worker runs per cache (a second one exits at once). Jobs left active by a worker
    that died are queued again first.
    """
    _dir(cache_dir, "queue")
    with try_lock(_lock_path(cache_dir)) as acquired:
        if not acquired:
            return 0
        for orphan in sorted(_dir(cache_dir, "active").glob("*.json")):
            _take_up(cache_dir, orphan)
        if executor() == "ray":
            return _work_on_ray(cache_dir, idle_exit_s)
        count, idle_since = 0, time.monotonic()
        while True:
            group = _next_group(cache_dir)
            if not group:
                if time.monotonic() - idle_since > idle_exit_s:
                    return count
                time.sleep(0.3)
                continue
            _run(cache_dir, group)
            count, idle_since = count + len(group), time.monotonic()


def _take_up(cache_dir: Path, orphan: Path) -> None:
    """Queue again a job whose worker died while training it, unless that keeps happening: a
    run that kills its worker (out of memory, say) would otherwise block the queue forever."""
    job = _read(orphan, "running")
    if job is None:
        return
    _stage_path(cache_dir, job).unlink(missing_ok=True)
    job = dataclasses.replace(job, state="queued", attempts=job.attempts + 1)
    if job.attempts >= MAX_ATTEMPTS:
        _close(
            cache_dir,
            orphan,
            finished(
                job,
                "failed",
                f"the worker was killed {job.attempts} times while training this run (out "
                "of memory, or kill -9 from outside); see cache/jobs/worker.log, then Retry",
            ),
        )
    else:
        _write(_dir(cache_dir, "queue"), job)
        orphan.unlink(missing_ok=True)


def _next_group(cache_dir: Path) -> list[Job]:
    """The oldest queued job and its :func:`_companions`, claimed once no submission is being
    written; empty when nothing waits."""
    with _submitting(cache_dir):
        job = _next(cache_dir)
        return [] if job is None else [job, *_companions(cache_dir, job)]


def _next(cache_dir: Path) -> Job | None:
    """Move the oldest queued job to active (the rename is the claim)."""
    for path in sorted(_dir(cache_dir, "queue").glob("*.json")):
        job = _claim(cache_dir, path)
        if job is not None:
            return job
    return None


def _claim(cache_dir: Path, queued: Path) -> Job | None:
    """Move a queued job to active: the rename is the claim. ``None`` when it was cancelled
    (or claimed) meanwhile, or is not a job."""
    target = _dir(cache_dir, "active") / queued.name
    try:
        os.replace(queued, target)
    except FileNotFoundError:
        return None
    return _read(target, "running")


def _companions(cache_dir: Path, job: Job) -> list[Job]:
    """Queued jobs whose heads can train in one fit with ``job``'s (the same
    :func:`core.engine.pipeline.head_group`), claimed as :func:`_next` claims a job: a grid queued from
    a page trains as quickly as the same grid swept from the command line."""

    key = head_group(job.config)
    claimed: list[Job] = []
    if key is None:
        return claimed
    for path in sorted(_dir(cache_dir, "queue").glob("*.json")):
        if len(claimed) == HEADS_PER_FIT - 1:
            break
        queued = _read(path, "queued")
        if queued is not None and head_group(queued.config) == key:
            running = _claim(cache_dir, path)
            if running is not None:
                claimed.append(running)
    return claimed


def outcomes(cache_dir: Path, group: list[Job]) -> list[Job]:
    """The finished records of jobs whose heads train together
    (:func:`core.engine.pipeline.train_heads`, its preparation reported as the first job's): a job
    whose run that fit trained is complete, one it stopped on request is cancelled; any other
    (held by another process, or left over by a failure of the fit) goes through
    :func:`outcome` alone, as does a group of one. Runs in the local worker, or as a Ray task
    on any node that sees the cache."""

    if len(group) == 1:
        return [outcome(cache_dir, group[0])]
    before = {job.run_id for job in group if runs.is_complete(cache_dir, job.run_id)}
    try:
        with reporting(_stage_writer(cache_dir, group[0])):
            dataset = scan(group[0].config.data, cache_dir)
            prepared = [prepare(job.config, cache_dir, dataset=dataset) for job in group]
            train_heads(prepared, cache_dir, new_request=False)
    except RunCancelled:
        pass  # the cancelled runs are marked; every other run of the group was committed
    except (UserError, RuntimeError, OSError, MemoryError) as error:
        # what a fit is known to raise (bad data, out of memory, the disk): each job then meets
        # the error alone and records its own; any other error is a bug of ours and is raised
        print(f"training {len(group)} heads together failed ({type(error).__name__}: {error})", flush=True)

    def settled(job: Job) -> Job:
        if job.run_id not in before and runs.is_complete(cache_dir, job.run_id):
            return finished(job, "complete")
        if cancelling(cache_dir, job) and runs.run_state(cache_dir, job.run_id) == "cancelled":
            return finished(job, "cancelled")
        return outcome(cache_dir, job)

    return [settled(job) for job in group]


def cancelling(cache_dir: Path, job: Job) -> bool:
    """Whether a running job was asked to stop (a head trained with others stops at its next
    step, and is recorded once the fit it shares ends)."""
    return runs.cancel_path(cache_dir, job.run_id).exists()


def outcome(cache_dir: Path, job: Job) -> Job:
    """Train a job's run (its preparation stages written beside its active record); the job's
    finished record: complete, cached, failed with the reason, or cancelled."""

    try:
        with reporting(_stage_writer(cache_dir, job)):
            result = train_run(job.config, cache_dir, new_request=False)
        return finished(job, "cached" if result.cached else "complete")
    except RunCancelled:
        return finished(job, "cancelled")
    except UserError as error:
        return finished(job, "failed", str(error))
    except Exception as error:  # a worker must outlive any one bad run; the error is recorded
        if is_disk_full(error):
            release_reserve(cache_dir)
            error = disk_full(cache_dir)
        reason = str(error) if isinstance(error, DiskFull) else f"{type(error).__name__}: {error}"
        return finished(job, "failed", reason.splitlines()[0])


def _run(cache_dir: Path, group: list[Job]) -> None:
    try:
        done = outcomes(cache_dir, group)
    except BaseException:  # the worker itself is stopped (SIGTERM, Ctrl+C): the jobs wait
        _requeue(cache_dir, group)
        raise
    for job, record in zip(group, done, strict=True):
        _settle(cache_dir, job, record)


def _settle(cache_dir: Path, job: Job, done: Job) -> None:
    """Record a job as finished and drop what it left beside its active record."""
    _close(cache_dir, _dir(cache_dir, "active") / f"{job.id}.json", done)
    _stage_path(cache_dir, job).unlink(missing_ok=True)
    runs.cancel_path(cache_dir, job.run_id).unlink(missing_ok=True)


def _work_on_ray(cache_dir: Path, idle_exit_s: float) -> int:
    """The worker's loop when ``HMD_EXECUTOR=ray``: every queued job is started at once as
    Ray tasks (heads that share features dealt into one task per cluster slot, as a swept grid
    is; the cluster places them), and each task's jobs are recorded as it finishes. Stopping
    the worker cancels the tasks and puts their jobs back on the queue."""

    options = ray_executor.RayOptions(address=os.environ.get("HMD_RAY_ADDRESS") or None)
    started: dict = {}  # task handle -> its jobs
    count, idle_since = 0, time.monotonic()
    try:
        while True:
            claimed = []
            with _submitting(cache_dir):
                while (job := _next(cache_dir)) is not None:
                    claimed.append(job)
            if claimed:
                tasks = ray_executor.submit_jobs(claimed, cache_dir, options, outcomes)
                started_as = counted(len(tasks), "Ray task")
                print(f"{counted(len(claimed), 'job')} started as {started_as}", flush=True)
                started |= tasks
            if not started:
                if time.monotonic() - idle_since > idle_exit_s:
                    return count
                time.sleep(0.3)
                continue
            for handle in ray_executor.ready(list(started), timeout=0.3):
                group = started.pop(handle)
                try:
                    records = ray_executor.task_result(handle)
                except UserError as error:
                    records = [finished(job, "failed", str(error)) for job in group]
                for job, done in zip(group, records, strict=True):
                    _settle(cache_dir, job, done)
                count, idle_since = count + len(group), time.monotonic()
    except BaseException:
        ray_executor.cancel(list(started))
        _requeue(cache_dir, [job for group in started.values() for job in group])
        raise


def _requeue(cache_dir: Path, claimed: list[Job]) -> None:
    """Put jobs the worker claimed back on the queue (those still active), for the next worker."""
    for job in claimed:
        active = _dir(cache_dir, "active") / f"{job.id}.json"
        with contextlib.suppress(FileNotFoundError):
            os.replace(active, _dir(cache_dir, "queue") / active.name)


def _close(cache_dir: Path, active: Path, done: Job) -> None:
    """Write the finished record, then drop the active one: never the other way round. On a
    full disk the reserve is given up for it; if even that fails the job goes back on the
    queue, to run again once there is room."""
    try:
        _write(_dir(cache_dir, "done"), done)
    except DiskFull:
        release_reserve(cache_dir)
        try:
            _write(_dir(cache_dir, "done"), done)
        except DiskFull:
            os.replace(active, _dir(cache_dir, "queue") / active.name)
            raise
    active.unlink(missing_ok=True)


# --- what the active job is doing before training starts, and how long the queue will take -----


def _stage_path(cache_dir: Path, job: Job) -> Path:
    return _dir(cache_dir, "active") / f"{job.id}.stage"


def _stage_writer(cache_dir: Path, job: Job) -> Reporter:
    return stage_writer(_stage_path(cache_dir, job))


def stage(cache_dir: Path, job: Job) -> Stage | None:
    """What the active job is preparing now, if it is past the queue and not yet training."""
    return read_stage(_stage_path(cache_dir, job))


def activity(cache_dir: Path, job: Job) -> Stage | Progress | None:
    """What the active job is doing: a preparation stage, or training (whichever was written
    last), or nothing yet."""

    progress_file, stage_file = runs.partial_dir(cache_dir, job.run_id).progress, _stage_path(cache_dir, job)
    training = read_progress(progress_file)
    preparing = stage(cache_dir, job)
    if training is None or preparing is None:
        return training or preparing
    try:
        newer = progress_file.stat().st_mtime >= stage_file.stat().st_mtime
    except FileNotFoundError:  # the run was committed (or its stage dropped) since they were read
        newer = True
    return training if newer else preparing


def queue_seconds(queued: list[Job], summaries) -> tuple[float, int]:
    """Seconds the queued jobs will train, from the median training time of finished runs of the
    same backbone, mode, augmentation and image size; and how many jobs have no such run yet."""
    from statistics import median

    def kind(config: RunConfig) -> tuple:
        return (config.backbone, config.mode, config.aug, config.image_size)

    seen: dict[tuple, list[float]] = {}
    for summary in summaries:
        seen.setdefault(kind(summary.config), []).append(summary.train_seconds)
    known = [median(seen[kind(job.config)]) for job in queued if kind(job.config) in seen]
    return float(sum(known)), len(queued) - len(known)
