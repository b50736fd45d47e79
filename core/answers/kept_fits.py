"""Curve fits kept in the cache, so that one fit of the same runs serves every process.

The CLI's ``budget``, ``plan`` and ``report``, a dashboard restarted, and each viewer's session
of a served team ask for the same ensemble of the same runs, and each costs seconds (about 1,700
least-squares fits). A fit is filed under a digest of everything it is computed from: the
runs' image counts and accuracies, the settings, and the source of the curve code itself, so a
new run, another setting or a changed curve is a new entry, never a stale answer. The files only
save recomputing: skipped while writes are switched off or the disk is full, recomputed when
damaged, and the oldest dropped beyond :data:`KEEP` (about 22 KB each; one dropped and asked
for again is fitted again), so a cache that gains runs every day does not grow without end.
Reading one writes nothing, not even its time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.answers import curves
from core.base.errors import DiskFull
from core.base.paths import read_only_reason, write_atomic

T = TypeVar("T")
FOLDER = "fits"
KEEP = 500  # fits kept, the newest written
# what a damaged or truncated pickle raises (a file from another layout has another digest)
DAMAGED = (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError, TypeError)


@functools.cache
def code_digest() -> str:
    """The curve package's source: a fit from other curve code is another fit."""
    digest = hashlib.sha256()
    for path in sorted(Path(curves.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def path_for(cache_dir: Path, inputs: tuple) -> Path:
    """Where the fit of ``inputs`` (plain values whose ``repr`` is exact: floats, ints, strings,
    tuples and frozen dataclasses of them) is kept."""
    key = hashlib.sha256(repr((code_digest(), inputs)).encode()).hexdigest()[:40]
    return cache_dir / FOLDER / f"{key}.pickle"


def kept(cache_dir: Path, inputs: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, read back from the cache when the same ``inputs`` were fitted before."""
    path = path_for(cache_dir, inputs)
    if path.exists():
        try:
            found = pickle.loads(path.read_bytes())
        except DAMAGED as error:
            print(f"warning: kept fit {path} is damaged ({error!r}); fitting again", file=sys.stderr)
            if read_only_reason() is None:
                path.unlink(missing_ok=True)
        else:
            return found
    value = compute()
    with contextlib.suppress(DiskFull):  # the answer stands; only its copy is lost
        if write_atomic(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), derived=True):
            drop_oldest(path.parent, KEEP)
    return value


def drop_oldest(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest fits in ``folder``."""
    dated = []
    for path in folder.glob("*.pickle"):
        with contextlib.suppress(FileNotFoundError):
            dated.append((path.stat().st_mtime_ns, path))
    for _, path in sorted(dated, reverse=True)[keep:]:
        path.unlink(missing_ok=True)
