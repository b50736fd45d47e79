"""CAM overlays drawn in a process of their own, so that a page never computes them in its script
thread: a slow method (ScoreCAM: seconds per image on a CPU) can be followed, cancelled, and left
behind by a closed tab without keeping the server busy.

::

    cache/cams/requests/<key>.json       what to draw: (run, image, class) triples and the method
    cache/cams/requests/<key>.progress   how far the drawing has got, and since when
    cache/cams/requests/<key>.cancel     appears when someone asks it to stop
    cache/cams/requests/worker.lock      held by the live CAM worker

A request is keyed by its content, so asking twice (two tabs, a rerun) draws once; overlays are
the same cached PNGs :func:`core.answers.cam.overlays` writes, so a page shows them as soon as they exist.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.answers.cam import check_method, overlay_path, overlays
from core.base import background
from core.base.errors import UserError
from core.base.locks import is_held, try_lock
from core.base.paths import check_writable, read_json, read_only_reason, write_json

Item = tuple[str, int, int]  # run id, dataset image index, class index


class Cancelled(Exception):
    """A request's cancel file appeared."""


def _folder(cache_dir: Path) -> Path:
    folder = cache_dir / "cams" / "requests"
    if read_only_reason() is None:  # a viewer's page only reads the requests
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def missing(cache_dir: Path, items: Iterable[Item], method: str, source: str = "") -> list[Item]:
    """The items whose overlay is not drawn yet, each once (a right answer's predicted and true
    class are one map; ``source``: see :func:`core.answers.cam.overlays`)."""
    return [
        item
        for item in dict.fromkeys(items)
        if not overlay_path(cache_dir, item[0], method, item[1], item[2], source).exists()
    ]


CANCELLED = "cancelled"


@dataclass(frozen=True)
class Status:
    """How far a request has got; ``error`` says why it stopped early (:data:`CANCELLED` when
    someone asked it to). ``progress`` counts images drawn, with the share of the image being
    drawn (ScoreCAM's passes over it); ``started`` is the clock time the worker took it up;
    ``paced``: the clock time and progress of its first report, once the model was loaded."""

    done: int
    total: int
    finished: bool
    error: str | None = None
    progress: float = 0.0
    started: float | None = None
    stopping: bool = False  # asked to stop, not stopped yet
    paced: tuple[float, float] | None = None

    @property
    def fraction(self) -> float:
        return min(self.progress, self.total) / self.total if self.total else 1.0

    @property
    def cancelled(self) -> bool:
        return self.error == CANCELLED

    def seconds_left(self, now: float) -> float | None:
        """The time left at the pace since the first report; None until a second one. Timed from
        the start, loading the model counted as drawing: ScoreCAM's first estimate said 36
        minutes, then 3."""
        if self.paced is None or self.progress <= self.paced[1]:
            return None
        since, at = self.paced
        return (now - since) * (self.total - self.progress) / (self.progress - at)


def request(cache_dir: Path, items: list[Item], method: str, source: str = "") -> str:
    """Ask for the overlays of ``items`` and make sure a CAM worker draws them; returns the
    request's key (the same for the same items and method).

    Raises:
        UserError: unknown method.
    """
    check_method(method)
    todo = missing(cache_dir, items, method, source)
    key = _key(todo, method, source)
    folder = _folder(cache_dir)
    (folder / f"{key}.cancel").unlink(missing_ok=True)
    if todo and not (folder / f"{key}.json").exists():
        write_json(folder / f"{key}.progress", _progress(0, len(todo)))
        write_json(
            folder / f"{key}.json", {"method": method, "items": todo, "source": source, "time": time.time()}
        )
    if todo:
        _ensure_worker(cache_dir)
    return key


def _key(todo: list[Item], method: str, source: str) -> str:
    return hashlib.blake2b(json.dumps([method, source, sorted(todo)]).encode(), digest_size=8).hexdigest()


def _progress(
    done: int,
    total: int,
    error: str | None = None,
    progress: float | None = None,
    started: float | None = None,
    paced: tuple[float, float] | None = None,
) -> dict:
    return {
        "done": done,
        "total": total,
        "error": error,
        "progress": done if progress is None else progress,
        "started": started,
        "paced": paced,
    }


def pending(cache_dir: Path, items: Iterable[Item], method: str, source: str = "") -> str | None:
    """The key of the request for the missing overlays of ``items`` while it waits or is being
    drawn, else None: a page follows a drawing it did not start (another tab's, or its own
    before a rerun) without asking for it again."""
    key = _key(missing(cache_dir, items, method, source), method, source)
    return key if (_folder(cache_dir) / f"{key}.json").exists() else None


def status(cache_dir: Path, key: str) -> Status:
    folder = _folder(cache_dir)
    try:
        progress = read_json(folder / f"{key}.progress")
    except (OSError, ValueError):
        return Status(0, 0, True)
    pending = (folder / f"{key}.json").exists()
    takeover = pending and read_only_reason() is None  # a read-only page starts no worker
    if takeover and not is_held(_lock(cache_dir)) and _started_exited(cache_dir):
        _ensure_worker(cache_dir)  # its worker died (a reboot, a kill): another takes it up
    return Status(
        progress["done"],
        progress["total"],
        not pending,
        progress.get("error"),
        progress.get("progress", progress["done"]),
        progress.get("started"),
        pending and (folder / f"{key}.cancel").exists(),
        tuple(progress["paced"]) if progress.get("paced") else None,
    )


def cancel(cache_dir: Path, key: str, wait_s: float = 0.0) -> Status:
    """Ask the worker to stop drawing ``key``: it looks before each of the model's forward
    passes (for ScoreCAM, every few dozen channels of an image), so it stops within one pass.
    Waits up to ``wait_s`` for it to have stopped, so that a page can say so at once; returns
    the request's status then."""
    check_writable()
    (_folder(cache_dir) / f"{key}.cancel").touch()
    deadline = time.monotonic() + wait_s
    while not (now := status(cache_dir, key)).finished and time.monotonic() < deadline:
        time.sleep(0.05)
    return now


def _lock(cache_dir: Path) -> Path:
    return _folder(cache_dir) / "worker.lock"


_started: dict[Path, subprocess.Popen] = {}


def _started_exited(cache_dir: Path) -> bool:
    process = _started.get(cache_dir)
    return process is None or process.poll() is not None


def _ensure_worker(cache_dir: Path) -> None:
    if is_held(_lock(cache_dir)) or not _started_exited(cache_dir):
        return
    _started[cache_dir] = background.start(cache_dir, "cam-worker", _folder(cache_dir) / "worker.log")


def work(cache_dir: Path) -> int:
    """Draw every waiting request, oldest first, until none is left; returns how many were done.
    One CAM worker per cache (a second exits at once)."""
    count = 0
    with try_lock(_lock(cache_dir)) as acquired:
        if not acquired:
            return 0
        while waiting := sorted(_folder(cache_dir).glob("*.json"), key=lambda p: p.stat().st_mtime):
            _draw(cache_dir, waiting[0])
            count += 1
    return count


def _draw(cache_dir: Path, path: Path) -> None:
    key = path.stem
    folder = _folder(cache_dir)
    record = read_json(path)
    items = [tuple(item) for item in record["items"]]
    done, error, started = 0, None, time.time()
    paced: tuple[float, float] | None = None  # the first report's time and progress

    def report(finished: float, total: int) -> None:
        nonlocal paced
        if (folder / f"{key}.cancel").exists():
            raise Cancelled
        paced = paced or (time.time(), done + finished)
        write_json(
            folder / f"{key}.progress",
            _progress(
                done + int(finished), len(items), progress=done + finished, started=started, paced=paced
            ),
        )

    try:
        for rid in dict.fromkeys(item[0] for item in items):
            mine = [(index, label) for run, index, label in items if run == rid]
            overlays(
                cache_dir, rid, mine, record["method"], on_progress=report, source=record.get("source", "")
            )
            done += len(mine)
    except Cancelled:
        error = CANCELLED
    except Exception as problem:  # the worker outlives one bad request; the page shows why
        error = str(problem) if isinstance(problem, UserError) else f"{type(problem).__name__}: {problem}"
    drawn = len(items) - len(missing(cache_dir, items, record["method"], record.get("source", "")))
    write_json(folder / f"{key}.progress", _progress(drawn, len(items), error, started=started))
    path.unlink(missing_ok=True)
    (folder / f"{key}.cancel").unlink(missing_ok=True)
