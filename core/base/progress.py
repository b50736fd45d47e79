"""Progress of long work, told twice: a tqdm bar on stderr for a person at a terminal (so that
``--json`` output on stdout stays clean), and, inside :func:`reporting`, a callback that another
process can follow (the dashboard's worker writes it where the Train page reads it)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from core.base.errors import DiskFull
from core.base.paths import read_json, write_json

T = TypeVar("T")
Reporter = Callable[[str, int, int | None, str, float], None]  # stage, done, total, unit, seconds so far
_reporter: ContextVar[Reporter | None] = ContextVar("reporter", default=None)
EVERY_S = 0.5


def _left(seconds: float) -> str:
    return "under a second left" if seconds < 0.5 else f"about {seconds:,.0f} s left"


@dataclass(frozen=True)
class Stage:
    """Where one stage of long work is (a reporter's arguments as a value): checking images,
    decoding them, extracting features, cross-validating heads."""

    name: str
    done: int
    total: int | None
    unit: str
    seconds: float

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    def describe(self) -> str:
        """``decoding images: 1,200 of 5,000 img, 950/s, about 4 s left``."""
        text = f"{self.name}: {self.done:,}" + (f" of {self.total:,}" if self.total else "") + f" {self.unit}"
        if self.done and self.seconds > 0:
            rate = self.done / self.seconds
            left = (self.total - self.done) / rate if self.total else None
            text += f", {rate:,.0f}/s" + ("" if left is None else f", {_left(left)}")
        return text


def stage_writer(path: Path) -> Reporter:
    """A reporter that keeps the latest stage in ``path`` (JSON, replaced whole), for a page
    following the work from another process. Progress is for show: a full disk or a lost folder
    never fails the work itself."""

    def write(name: str, done: int, total: int | None, unit: str, seconds: float) -> None:
        record = {"name": name, "done": done, "total": total, "unit": unit, "seconds": round(seconds, 2)}
        with contextlib.suppress(OSError, DiskFull):
            write_json(path, record)

    return write


def read_stage(path: Path) -> Stage | None:
    """The stage :func:`stage_writer` last wrote to ``path``; None before the first."""
    try:
        return Stage(**read_json(path))
    except (OSError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Every :func:`progress` inside the block also calls ``reporter`` (at most twice a second,
    and at the end of each stage)."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


def announce(name: str) -> None:
    """Tell the current reporter that a step without a count begins (ranking a pool, say): a
    page following the work shows its name instead of the last counted stage's."""
    if (reporter := _reporter.get()) is not None:
        reporter(name, 0, None, "", 0.0)


def progress(
    items: Iterable[T], description: str, total: int | None = None, enabled: bool = True, unit: str = "it"
) -> Iterable[T]:
    """``items``, reported to the current reporter, and in a tqdm bar on stderr when enabled
    and stderr is a terminal."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    reporter = _reporter.get()
    if reporter is not None:
        items = _reported(items, description, total, unit, reporter)
    if not enabled or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, total=total, unit=unit, leave=False, file=sys.stderr)


def _reported(
    items: Iterable[T], description: str, total: int | None, unit: str, reporter: Reporter
) -> Iterator[T]:
    started = last = time.monotonic()
    reporter(description, 0, total, unit, 0.0)
    done = 0
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= EVERY_S:
            reporter(description, done, total, unit, now - started)
            last = now
    reporter(description, done, total, unit, time.monotonic() - started)
