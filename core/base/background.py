"""Start a ``python -m core`` command as a background process of its own: its own session (a
Ctrl+C or a closed terminal of the parent does not reach it, and the whole session can be
stopped at once by its id), output appended to a log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from core.base.paths import PROJECT_ROOT, check_writable


def start(
    cache_dir: Path,
    command: str,
    log_path: Path,
    args: Sequence[str] = (),
    out_path: Path | None = None,
) -> subprocess.Popen:
    """``python -m core --cache CACHE COMMAND ARGS``; stderr (and stdout, unless ``out_path``
    takes it: a result printed as JSON) appended to ``log_path``."""
    check_writable()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # the child holds its own copies of the handles
    with open(log_path, "a") as log, open(out_path or log_path, "w" if out_path else "a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core", "--cache", str(cache_dir), command, *args],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=log,
            start_new_session=True,
        )
