"""The next-batch backtest (``python -m core next-batch --simulate``) as a process of its own, so
that a page never runs minutes of head fits in its script thread: the page starts it, follows
its progress, reads its result, and can stop it.

::

    cache/nextbatch/<key>.request.json   what was asked, the process id, and when it started
    cache/nextbatch/<key>.progress.json  rounds done of the total, written by the process
    cache/nextbatch/<key>.out            the command's stdout (its JSON) while it runs
    cache/nextbatch/<key>.json           the result: the stdout moved here, whole, once it exited
    cache/nextbatch/<key>.log            its stderr: the rounds as they end, or why it failed
    cache/nextbatch/<key>.stopped        someone stopped it

The key is the dataset's fingerprint (its contents) and the settings, so a result is shown again
for the same question (another tab, a rerun, a restart) and asked once. The result is only
moved into place after the process exited and its stdout parsed, so a reader never sees half
of one; whoever looks first after the exit (:func:`status`) moves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from core.answers.nextbatch.simulate import Settings, Simulation
from core.base import background
from core.base.paths import check_writable, read_json, write_json

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Request:
    """A backtest to run: the dataset (by path, keyed by its fingerprint), the settings, and the
    features and split it runs on (those of the runs whose curve the page shows)."""

    data: str
    fingerprint: str
    settings: Settings
    backbone: str
    image_size: int | None
    split: tuple[float, float, int]

    def key(self) -> str:
        fields = [self.fingerprint, self.settings.to_dict(), self.backbone, self.image_size, list(self.split)]
        return hashlib.blake2b(json.dumps(fields).encode(), digest_size=8).hexdigest()

    def args(self, progress: Path) -> list[str]:
        """The command line of ``next-batch --simulate`` for this request."""
        s = self.settings
        size = [] if self.image_size is None else ["--image-size", str(self.image_size)]
        holdout, val, split_seed = self.split
        return [
            *("--data", self.data, "--simulate", "--strategies", ",".join(s.strategies)),
            *("--start", str(s.start), "--batch", str(s.batch), "--rounds", str(s.rounds)),
            *("--seeds", ",".join(map(str, s.seeds)), "--backbone", self.backbone, *size),
            *("--holdout", str(holdout), "--val", str(val), "--split-seed", str(split_seed)),
            *("--progress", str(progress), "--json"),
        ]


@dataclass(frozen=True)
class Status:
    """Where a backtest stands. ``started`` is None when it was never asked for; ``error`` says
    why it ended without a result (:data:`CANCELLED` when someone stopped it); ``result`` is the
    stored result once there is one."""

    done: int
    total: int
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
        return min(self.done, self.total) / self.total if self.total else 0.0

    def seconds_left(self, now: float) -> float | None:
        """The time left at the pace so far (start-up included); None before the first round."""
        if self.started is None or self.done <= 0:
            return None
        return (now - self.started) * (self.total - self.done) / self.done


def _path(cache_dir: Path, key: str, suffix: str) -> Path:
    folder = cache_dir / "nextbatch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}{suffix}"


_processes: dict[str, subprocess.Popen] = {}  # started by this process: polled, so none is left a zombie


def start(cache_dir: Path, request: Request) -> str:
    """Start the backtest of ``request`` unless its result exists or it is running; returns its key."""
    check_writable()
    key = request.key()
    if status(cache_dir, key).running or _path(cache_dir, key, ".json").exists():
        return key
    for suffix in (".stopped", ".out", ".progress.json", ".log"):
        _path(cache_dir, key, suffix).unlink(missing_ok=True)
    progress = _path(cache_dir, key, ".progress.json")
    write_json(progress, {"done": 0, "total": request.settings.replays})
    process = background.start(
        cache_dir,
        "next-batch",
        _path(cache_dir, key, ".log"),
        request.args(progress),
        _path(cache_dir, key, ".out"),
    )
    _processes[key] = process
    write_json(_path(cache_dir, key, ".request.json"), {"pid": process.pid, "started": time.time()})
    return key


def _alive(key: str, pid: int) -> bool:
    process = _processes.get(key)
    if process is not None and process.pid == pid:
        return process.poll() is None  # polling reaps it once it exited
    try:
        os.kill(pid, 0)  # started by an earlier server: its pid is free once it exited
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid now belongs to another user's process
        return False
    return True


def status(cache_dir: Path, key: str) -> Status:
    """Where the backtest ``key`` stands; once its process exited, its result is moved into place."""
    result = _path(cache_dir, key, ".json")
    try:
        record = read_json(_path(cache_dir, key, ".request.json"))
        progress = read_json(_path(cache_dir, key, ".progress.json"))
    except (OSError, ValueError):  # never asked for here (or its record lost)
        return Status(0, 0, None, result.exists(), result=result if result.exists() else None)
    started, done, total = record["started"], progress["done"], progress["total"]
    if result.exists():
        return Status(total, total, started, True, result=result)
    if _alive(key, record["pid"]):
        return Status(done, total, started, False)
    if _path(cache_dir, key, ".stopped").exists():
        return Status(done, total, started, True, CANCELLED)
    try:
        json.loads(_path(cache_dir, key, ".out").read_text())["verdict"]
    except (OSError, ValueError, KeyError, TypeError):
        return Status(done, total, started, True, _failure(_path(cache_dir, key, ".log")))
    os.replace(_path(cache_dir, key, ".out"), result)
    return Status(total, total, started, True, result=result)


def _failure(log: Path) -> str:
    """The command's own one-line error, else where to read why."""
    lines = log.read_text().splitlines() if log.exists() else []
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else f"the backtest ended without a result; its log is {log}"


def cancel(cache_dir: Path, key: str, wait_s: float = 5.0) -> Status:
    """Stop the backtest ``key``: SIGTERM to its process group (the command exits as on Ctrl+C),
    SIGKILL if it is still there after ``wait_s``; returns its status once it is gone."""
    check_writable()
    _path(cache_dir, key, ".stopped").touch()
    try:
        pid = read_json(_path(cache_dir, key, ".request.json"))["pid"]
    except (OSError, ValueError):
        return status(cache_dir, key)
    for sent in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(key, pid):
            break
        try:
            os.killpg(pid, sent)  # its own session: the group id is its pid
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while _alive(key, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return status(cache_dir, key)


def load(found: Status) -> Simulation | None:
    """The stored result of a finished backtest, None without one."""
    return None if found.result is None else Simulation.from_dict(read_json(found.result))
