"""Run ``python -m core`` as a user types it, and the learning-curve sweep the budget tests share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.base.paths import PROJECT_ROOT

CURVE_SWEEP = [
    "sweep",
    "--preset",
    "curve",
    "--sample-seeds",
    "1,2,3",
    "--seeds",
    "1",
    "--image-size",
    "64",
    "--epochs",
    "3",
    "--json",
]


def core(cache: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m core --cache CACHE ARGS`` in the project folder: exit code, stdout, stderr
    (a command still running after ``timeout`` seconds fails the test: it hung)."""
    return subprocess.run(
        [sys.executable, "-m", "core", "--cache", str(cache), *args],
        cwd=PROJECT_ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
