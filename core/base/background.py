"""Start a ``python -m core`` command as a background process of its own: its own session (a
Ctrl+C or a closed terminal of the parent does not reach it), output appended to a log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.base.paths import PROJECT_ROOT


def start(cache_dir: Path, command: str, log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:  # the child holds its own copy of the handle
        return subprocess.Popen(
            [sys.executable, "-m", "core", "--cache", str(cache_dir), command],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
