"""Progress bars for long work, on stderr so that ``--json`` output on stdout stays clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], description: str, total: int | None = None, enabled: bool = True, unit: str = "it"
) -> Iterator[T] | Iterable[T]:
    """Wrap ``items`` in a tqdm bar on stderr when enabled and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, total=total, unit=unit, leave=False, file=sys.stderr)
