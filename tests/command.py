"""Run ``python -m core`` as a user types it, and the learning-curve sweep the budget tests share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.paths import PROJECT_ROOT

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


def core(cache: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m core --cache CACHE ARGS`` in the project folder: exit code, stdout, stderr."""
    return subprocess.run(
        [sys.executable, "-m", "core", "--cache", str(cache), *args],
        cwd=PROJECT_ROOT,
        text=True,
        capture_output=True,
        timeout=600,
    )
