"""One benchmark result row, and the few timing helpers every suite uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    """``ours`` against ``baseline`` in ``unit``; ``better`` says which direction wins."""

    suite: str
    measure: str
    ours: float
    baseline: float | None
    unit: str
    better: str = "higher"  # or "lower"
    target: float | None = None  # on the ratio (ours / baseline), or on ``ours`` when no baseline
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.ours / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        value = self.ratio if self.baseline else self.ours
        return value >= self.target if self.better == "higher" else value <= self.target

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def steady_rate(stamps: list[float], items_per_step: int, warmup: int = 2) -> float:
    """Items per second between step timestamps, skipping the first ``warmup`` steps."""
    stamps = stamps[warmup:]
    if len(stamps) < 2:
        raise ValueError("too few steps to measure a rate")
    return items_per_step * (len(stamps) - 1) / (stamps[-1] - stamps[0])


def best_of(work: Callable[[], float], repeats: int) -> float:
    """The highest of ``repeats`` measured rates (the least disturbed by a shared machine)."""
    return max(work() for _ in range(repeats))


def interleaved(ours: Callable[[], float], baseline: Callable[[], float], rounds: int) -> tuple[float, float]:
    """Medians of rates measured in turns (ours, baseline, ours, ...), so that a slow spell of a
    shared machine, or warming up, does not favour whichever side runs last."""
    import statistics

    pairs = [(ours(), baseline()) for _ in range(rounds)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
