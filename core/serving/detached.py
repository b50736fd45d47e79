"""A ``python -m core`` command run apart from the page that asked for it, so that a page never
spends minutes in its script thread: the page starts it, follows its progress, reads its JSON
result, and can stop it. The next-batch backtest and a pool's ranking run this way.

::

    cache/<folder>/<key>.request.json   the process id and when it started
    cache/<folder>/<key>.progress.json  where it is (a :class:`~core.base.progress.Stage`), written by it
    cache/<folder>/<key>.out            the command's stdout (its JSON) while it runs
    cache/<folder>/<key>.json           the result: the stdout moved here, whole, once it exited
    cache/<folder>/<key>.log            its stderr: its progress in words, or why it failed
    cache/<folder>/<key>.stopped        someone stopped it

The key names what was asked (the caller's), so a result is shown again for the same question
(another tab, a rerun, a restart) and asked once. The result is only moved into place after the
process exited and its stdout parsed, so a reader never sees half of one; whoever looks first
after the exit (:func:`status`) moves it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from core.base import background
from core.base.paths import check_writable, read_json, write_json
from core.base.progress import Stage, read_stage

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Detached:
    """A command to run apart: ``python -m core COMMAND ARGS --progress FILE --json``.

    ``folder`` (under the cache) and ``key`` name its files; ``expects`` is a key its JSON result
    must hold to count as one; ``first`` is the stage shown before the command reports its own.
    """

    folder: str
    key: str
    command: str
    args: tuple[str, ...]
    expects: str
    first: Stage


@dataclass(frozen=True)
class Status:
    """Where a detached command stands. ``started`` is None when it was never asked for;
    ``error`` says why it ended without a result (:data:`CANCELLED` when someone stopped it);
    ``result`` is the stored result once there is one; ``stage`` its last progress."""

    stage: Stage | None
    started: float | None
    finished: bool
    error: str | None = None
    result: Path | None = None

    @property
    def running(self) -> bool:
        return self.started is not None and not self.finished

    @property
    def cancelled(self) -> bool:
        return self.error == CANCELLED

    @property
    def fraction(self) -> float:
        return (self.stage.fraction or 0.0) if self.stage else 0.0

    def seconds_left(self, now: float) -> float | None:
        """The time left at the pace so far, start-up included: for a command of one stage (the
        backtest's rounds); None before the first step. A stage's own rate is in ``stage``."""
        if self.started is None or self.stage is None or not self.stage.done or not self.stage.total:
            return None
        return (now - self.started) * (self.stage.total - self.stage.done) / self.stage.done


def _path(cache_dir: Path, folder: str, key: str, suffix: str) -> Path:
    place = cache_dir / folder
    place.mkdir(parents=True, exist_ok=True)
    return place / f"{key}{suffix}"


_processes: dict[str, subprocess.Popen] = {}  # started by this process: polled, so none is left a zombie


def start(cache_dir: Path, job: Detached) -> str:
    """Start ``job`` unless its result exists or it is running; returns its key."""
    check_writable()
    if status(cache_dir, job.folder, job.key, job.expects).running:
        return job.key
    if _path(cache_dir, job.folder, job.key, ".json").exists():
        return job.key
    for suffix in (".stopped", ".out", ".progress.json", ".log"):
        _path(cache_dir, job.folder, job.key, suffix).unlink(missing_ok=True)
    progress = _path(cache_dir, job.folder, job.key, ".progress.json")
    write_json(progress, dataclasses.asdict(job.first))
    process = background.start(
        cache_dir,
        job.command,
        _path(cache_dir, job.folder, job.key, ".log"),
        [*job.args, "--progress", str(progress), "--json"],
        _path(cache_dir, job.folder, job.key, ".out"),
    )
    _processes[f"{job.folder}/{job.key}"] = process
    record = {"pid": process.pid, "started": time.time()}
    write_json(_path(cache_dir, job.folder, job.key, ".request.json"), record)
    return job.key


def _alive(name: str, pid: int) -> bool:
    process = _processes.get(name)
    if process is not None and process.pid == pid:
        return process.poll() is None  # polling reaps it once it exited
    try:
        os.kill(pid, 0)  # started by an earlier server: its pid is free once it exited
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid now belongs to another user's process
        return False
    return True


def status(cache_dir: Path, folder: str, key: str, expects: str) -> Status:
    """Where the command ``key`` stands; once its process exited, its result is moved into place."""
    result = _path(cache_dir, folder, key, ".json")
    stage = read_stage(_path(cache_dir, folder, key, ".progress.json"))
    try:
        record = read_json(_path(cache_dir, folder, key, ".request.json"))
    except (OSError, ValueError):  # never asked for here (or its record lost)
        return Status(stage, None, result.exists(), result=result if result.exists() else None)
    started = record["started"]
    if result.exists():
        return Status(stage, started, True, result=result)
    if _alive(f"{folder}/{key}", record["pid"]):
        return Status(stage, started, False)
    if _path(cache_dir, folder, key, ".stopped").exists():
        return Status(stage, started, True, CANCELLED)
    out = _path(cache_dir, folder, key, ".out")
    try:
        json.loads(out.read_text())[expects]
    except (OSError, ValueError, KeyError, TypeError):
        return Status(stage, started, True, _failure(_path(cache_dir, folder, key, ".log")))
    os.replace(out, result)
    return Status(stage, started, True, result=result)


def _failure(log: Path) -> str:
    """The command's own one-line error, else where to read why."""
    lines = log.read_text().splitlines() if log.exists() else []
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else f"it ended without a result; its log is {log}"


def cancel(cache_dir: Path, folder: str, key: str, expects: str, wait_s: float = 5.0) -> Status:
    """Stop the command ``key``: SIGTERM to its process group (the command exits as on Ctrl+C),
    SIGKILL if it is still there after ``wait_s``; returns its status once it is gone."""
    check_writable()
    _path(cache_dir, folder, key, ".stopped").touch()
    name = f"{folder}/{key}"
    try:
        pid = read_json(_path(cache_dir, folder, key, ".request.json"))["pid"]
    except (OSError, ValueError):
        return status(cache_dir, folder, key, expects)
    for sent in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(name, pid):
            break
        try:
            os.killpg(pid, sent)  # its own session: the group id is its pid
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while _alive(name, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return status(cache_dir, folder, key, expects)
