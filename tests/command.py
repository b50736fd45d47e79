"""The CLI as a user types it, and the learning-curve sweep the budget tests share.

:func:`core` runs ``python -m core``'s own ``main`` in the test's process: the same parser,
commands, exit codes and output, without a process of its own that imports torch and Lightning
again (about 4 s of CPU each, a tenth of the suite when every CLI test paid it).
:func:`core_process` starts ``python -m core`` itself, for what only a process shows: the entry
point, a stdout that native libraries write to as well, a command that must not hang (its
``timeout``), Ray (a cluster joined by the process that asks), signals and kills."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

from core.base.paths import PROJECT_ROOT
from core.cli import main

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
    """``python -m core --cache CACHE ARGS`` run by the CLI's ``main`` here: its exit code and
    what it wrote to stdout and stderr (an argument error exits with 2, as from a shell)."""
    argv = ["--cache", str(cache), *args]
    out, err = io.StringIO(), io.StringIO()
    # what a command may set for its own process: SIGTERM's handler (main makes it stop a command
    # as Ctrl+C does) and environment defaults (MLflow's HTTP retries), put back for the next test
    sigterm, environment = signal.getsignal(signal.SIGTERM), dict(os.environ)
    with contextlib.chdir(PROJECT_ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse on a bad flag
            code = exit_.code if isinstance(exit_.code, int) else 2
        finally:
            signal.signal(signal.SIGTERM, sigterm)
            os.environ.clear()
            os.environ.update(environment)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "core", *argv], code, out.getvalue(), err.getvalue()
    )


def core_process(cache: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m core --cache CACHE ARGS`` in a process of its own, in the project folder: exit
    code, stdout, stderr (a command still running after ``timeout`` seconds fails the test: it hung)."""
    return subprocess.run(
        [sys.executable, "-m", "core", "--cache", str(cache), *args],
        cwd=PROJECT_ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
