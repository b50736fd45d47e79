"""Where the on-disk cache lives, and how files in it are written safely.

Every file is written to a temporary file beside its target and renamed into place, so a
reader sees the old file or the new one, never half of one. The writer holds a lock on the
temporary file while writing it: a temporary file that nobody holds was left by a killed
writer, and :func:`clean_temporaries` removes it.

A full disk is turned into :class:`~core.base.errors.DiskFull`, a one-line message naming the folder
and the space needed. The cache keeps a small reserve file that is given up when the disk is
full, so that the record of what failed can still be written.

Writes can be switched off for the code running in one context (a viewer's page run): the switch
is a mechanism only (who may write is decided in :mod:`core.serving.access`), and every write
primitive here checks it, so a write attempted through any page fails in one place.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from core.base.errors import DiskFull, ReadOnly, UserError
from core.base.locks import hold, is_held, release

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = PROJECT_ROOT / "data" / "fashion-mnist"
RESERVE_NAME = ".reserve"
RESERVE_BYTES = 1 << 20
STALE_AFTER_S = 60.0  # a temporary file untouched this long, and unlocked, is stale
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give: mkstemp's 0600 would hide reports from others


# None: writes allowed; else the sentence that says why they are not. A ContextVar, so that each
# thread (Streamlit runs every script run in a thread of its own) and each task sees its own.
_READ_ONLY: contextvars.ContextVar[str | None] = contextvars.ContextVar("hmd_read_only", default=None)
# where the running app keeps each session's switch (set once by the app, never by the CLI): a
# widget's callback and a fragment's rerun run before, or without, the page frame that sets the
# ContextVar, so the app's own per-session record is asked too
_read_only_source: Callable[[], str | None] | None = None


@contextlib.contextmanager
def read_only(reason: str | None) -> Iterator[None]:
    """Refuse writes inside the block with ``reason`` (``None``: allow them), then restore."""
    token = _READ_ONLY.set(reason)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def set_read_only_source(source: Callable[[], str | None] | None) -> None:
    """Where writes ask, besides :func:`read_only`, whether they are refused: the app passes a
    function that reads the running session's switch (``None`` for code outside any session)."""
    global _read_only_source
    _read_only_source = source


def read_only_reason() -> str | None:
    """Why writes are refused here, or ``None`` when they are allowed."""
    reason = _READ_ONLY.get()
    if reason is None and _read_only_source is not None:
        reason = _read_only_source()
    return reason


def check_writable() -> None:
    """Call before anything that creates, moves or deletes a file, or starts a process that will.

    Raises:
        ReadOnly: "read-only: <why>" while writes are switched off.
    """
    if (reason := read_only_reason()) is not None:
        raise ReadOnly(f"read-only: {reason}")


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: an explicit override, else ``$HMD_CACHE``, else ``cache/`` in the repo."""
    root = Path(override or os.environ.get("HMD_CACHE") or PROJECT_ROOT / "cache")
    if root.exists() and not root.is_dir():
        raise UserError(f"the cache {root} is a file, not a folder: name a folder (--cache or $HMD_CACHE)")
    if read_only_reason() is None:
        root.mkdir(parents=True, exist_ok=True)
        keep_reserve(root)
    return root


def keep_reserve(cache_dir: Path) -> None:
    """Make sure the reserve file exists, if there is room for it."""
    reserve = cache_dir / RESERVE_NAME
    if reserve.exists():
        return
    with contextlib.suppress(OSError):
        write_atomic(reserve, bytes(RESERVE_BYTES))


def release_reserve(cache_dir: Path) -> None:
    """Give the reserve's space back, so that the failure of a full disk can be recorded."""
    (cache_dir / RESERVE_NAME).unlink(missing_ok=True)


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def is_disk_full(error: BaseException) -> bool:
    """A full disk, as the OS reports it or as :func:`write_atomic` already put it."""
    return isinstance(error, DiskFull) or (
        isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    )


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def disk_full(folder: Path, needed: int | None = None) -> DiskFull:
    """The one-line error for a full disk at ``folder``."""
    free = shutil.disk_usage(folder).free if folder.exists() else 0
    need = f"needs about {human_bytes(needed)}, " if needed else ""
    return DiskFull(
        f"disk full: cannot write in {folder} ({need}{human_bytes(free)} free); "
        "free some space and try again (nothing finished was lost)"
    )


def check_space(folder: Path, needed: int) -> None:
    """Fail before a large write that cannot fit, instead of half-way through it.

    Raises:
        DiskFull: less than ``needed`` bytes are free at ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(folder).free < needed:
        raise disk_full(folder, needed)


def write_atomic(
    path: Path, data: bytes | Callable[[BinaryIO], Any], needed: int | None = None, derived: bool = False
) -> bool:
    """Write ``data`` (bytes, or a function that writes to a file) to ``path`` so that readers
    see the old file or the new one, never half of one: write a temporary file, then rename.

    ``derived``: the file only saves recomputing (a scan, features, an analysis); where writes
    are switched off it is skipped instead of refused, so that reading a page still works.

    Returns:
        Whether the file was written (``False``: a derived file skipped while read-only).

    Raises:
        ReadOnly: writes are switched off and the file is not derived.
        DiskFull: the disk filled up (the temporary file is removed, the old file kept).
    """
    if derived and read_only_reason() is not None:
        return False
    check_writable()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        with open(tmp, "wb") as handle:  # ``handle.name`` is the path, for writers that need it
            hold(handle)
            try:
                data(handle) if callable(data) else handle.write(data)
                handle.flush()
            finally:
                release(handle)
        os.replace(tmp, path)
        return True
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        # some writers report a full disk as their own error (torch.save: RuntimeError "unexpected
        # pos"): an error with under a megabyte left is taken for what it most likely is
        if is_disk_full(error) or (isinstance(error, Exception) and _nearly_full(path.parent)):
            size = needed or (len(data) if isinstance(data, bytes) else None)
            raise disk_full(path.parent, size) from error
        raise


def save_npy(path: Path, array: Any, derived: bool = False) -> bool:
    """Save a numpy array atomically (a large one only if the disk has room for it); ``derived``
    and the returned flag as for :func:`write_atomic`."""
    import numpy as np

    if derived and read_only_reason() is not None:
        return False
    check_space(path.parent, array.nbytes + (1 << 20))
    return write_atomic(path, lambda handle: np.save(handle, array), needed=array.nbytes)


def write_json(path: Path, value: Any, derived: bool = False) -> bool:
    """``value`` as JSON, atomically; ``derived`` and the returned flag as for :func:`write_atomic`."""
    return write_atomic(path, json.dumps(value, indent=1, sort_keys=True).encode(), derived=derived)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files below ``folder`` left by writers that were killed: unlocked, and
    untouched for a minute (a writer takes its lock right after creating the file)."""
    if not folder.exists():
        return []
    now = time.time()
    found = []
    for path in folder.rglob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > STALE_AFTER_S and not is_held(path):
                found.append(path)
    return found


def clean_temporaries(folder: Path) -> list[Path]:
    """Remove the stale temporary files below ``folder``; returns those removed."""
    if read_only_reason() is not None:
        return []
    removed = stale_temporaries(folder)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def load_npy(path: Path, mmap: bool = True) -> Any:
    """A cached array, memory-mapped; ``None`` when it is missing or damaged (a damaged file is
    removed, with a line on stderr: cached arrays are derived data and are rebuilt)."""
    import numpy as np

    if not path.exists():
        return None
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        print(f"warning: cached array {path} is damaged ({error}); rebuilding it", file=sys.stderr)
        if read_only_reason() is None:
            path.unlink(missing_ok=True)
        return None


def quarantine(cache_dir: Path, path: Path) -> Path:
    """Move ``path`` (inside the cache) to ``cache/quarantine/<time>/<its relative path>``:
    what cannot be trusted is set aside for a person to look at, never deleted."""
    check_writable()
    target = cache_dir / "quarantine" / time.strftime("%Y%m%d-%H%M%S") / path.relative_to(cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.name}-{time.time_ns()}")
    os.replace(path, target)
    return target
