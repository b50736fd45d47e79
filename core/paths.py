"""Where the on-disk cache lives, and how files in it are written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT / "data" / "fashion-mnist"


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """The cache folder: an explicit override, else ``$HMD_CACHE``, else ``cache/`` in the repo."""
    root = Path(override or os.environ.get("HMD_CACHE") or PROJECT_ROOT / "cache")
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], Any]) -> None:
    """Write ``data`` (bytes, or a function that writes to a file) to ``path`` so that readers
    see the old file or the new one, never half of one: write a temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            data(handle) if callable(data) else handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npy(path: Path, array: Any) -> None:
    """Save a numpy array atomically."""
    import numpy as np

    write_atomic(path, lambda handle: np.save(handle, array))


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
