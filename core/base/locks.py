"""Advisory file locks (flock): held by a live process, dropped by the OS when it dies, which is
how a run or a worker that was killed is told from one that is still working.

A forked child (a DataLoader worker, say) would inherit the lock and keep it after its parent
was killed, so a restarted worker would find it taken for seconds: every lock this process
holds is pointed at ``/dev/null`` in a forked child, which leaves the parent's lock alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

_held: set[int] = set()  # file descriptors of the locks this process holds


def _drop_in_child() -> None:
    if not _held:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    for fd in _held:
        with contextlib.suppress(OSError):
            os.dup2(null, fd)  # the fd stays valid for its file object; the lock is not shared
    os.close(null)
    _held.clear()


os.register_at_fork(after_in_child=_drop_in_child)


def hold(handle: IO) -> bool:
    """Take an exclusive lock on an open file without waiting; False when another has it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    _held.add(handle.fileno())
    return True


def release(handle: IO) -> None:
    _held.discard(handle.fileno())
    fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` for the block; yields False (holding nothing) when
    another process has it. The lock file records the holder's process id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        if not hold(handle):
            yield False
            return
        try:
            with contextlib.suppress(OSError):  # the pid is for messages; a full disk must not stop the lock
                handle.seek(0)
                handle.truncate()
                handle.write(str(os.getpid()))
                handle.flush()
            yield True
        finally:
            release(handle)


@contextlib.contextmanager
def wait_lock(
    path: Path, timeout_s: float, on_wait: Callable[[int | None], None], poll_s: float = 0.5
) -> Iterator[bool]:
    """Like :func:`try_lock`, but wait up to ``timeout_s`` for the holder to finish;
    ``on_wait(holder_pid)`` is called once when waiting starts. Yields False on time-out."""
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        with try_lock(path) as acquired:
            if acquired or time.monotonic() >= deadline:
                yield acquired
                return
        if not told:
            on_wait(holder(path))
            told = True
        time.sleep(poll_s)


def is_held(path: Path) -> bool:
    """Whether a live process holds the lock on ``path``."""
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def holder(path: Path) -> int | None:
    """The process id written by the lock's current holder, if it can be read."""
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None
