"""The one home of runs on disk: folder layout, atomic commit, integrity, state, listing, loading.

::

    cache/runs/<run_id>/                   complete runs (never rewritten)
    cache/runs/.partial/<run_id>/          being trained, or failed, cancelled, interrupted
    cache/runs/.partial/<run_id>.lock      held by the process training it
    cache/runs/.partial/<run_id>.cancel    appears when someone asks the run to stop

A run is trained in its partial folder and renamed into place when everything is written: the
rename is the commit, so a run killed at any moment never appears complete. Before the rename
``manifest.json`` records the size and checksum of every file, and a run counts as complete
only while its files match it (sizes on every listing, checksums when a file is read and in
``python -m core doctor``). A run that fails the check is reported as damaged by name, left
out of listings, and moved to ``cache/quarantine/`` (never deleted) when it is trained again. Runs committed
before manifests existed are checked for their files and their row counts instead.

The files' contents are typed in :mod:`core.store.record`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.base.errors import RunDamaged, UserError
from core.base.locks import holder, is_held, try_lock, wait_lock
from core.base.paths import check_writable, quarantine, read_json, write_json
from core.data.images import cached_array
from core.models.backbones import build_backbone, get_spec
from core.store.record import (
    Metrics,
    Predictions,
    RunInfo,
    RunStatus,
    Summary,
    read_metrics,
    read_predictions,
    read_status,
)

STATES = ("complete", "running", "failed", "cancelled", "interrupted", "missing")
CHECKED_FILES = ("config.json", "metrics.jsonl", "predictions.csv", "summary.json", "weights.pt")
LATER_FILES = ("validation.csv",)  # checked too where present; runs committed before them lack them
LOCK_TIMEOUT_S = 3600.0  # how long a request waits for another process training the same run


def _file(name: str) -> property:
    return property(lambda self: self.path / name, doc=f"``{name}`` in the folder")


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder, complete or partial."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    config = _file("config.json")
    metrics = _file("metrics.jsonl")
    progress = _file("progress.json")
    predictions = _file("predictions.csv")
    validation = _file("validation.csv")
    summary = _file("summary.json")
    weights = _file("weights.pt")
    status = _file("status.json")
    manifest = _file("manifest.json")


def runs_dir(cache_dir: Path) -> Path:
    return cache_dir / "runs"


def complete_dir(cache_dir: Path, rid: str) -> RunFolder:
    return RunFolder(runs_dir(cache_dir) / rid)


def partial_dir(cache_dir: Path, rid: str) -> RunFolder:
    return RunFolder(runs_dir(cache_dir) / ".partial" / rid)


def cancel_path(cache_dir: Path, rid: str) -> Path:
    """A file whose appearance stops the run's training (kept outside its partial folder,
    which is recreated when training starts)."""
    return runs_dir(cache_dir) / ".partial" / f"{rid}.cancel"


def request_cancel(cache_dir: Path, rid: str) -> None:
    """Ask the process training ``rid`` to stop (it may not have started: the request waits)."""
    check_writable()
    path = cancel_path(cache_dir, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _lock_path(cache_dir: Path, rid: str) -> Path:
    return runs_dir(cache_dir) / ".partial" / f"{rid}.lock"


def is_locked(cache_dir: Path, rid: str) -> bool:
    return is_held(_lock_path(cache_dir, rid))


@contextlib.contextmanager
def run_lock(
    cache_dir: Path, rid: str, timeout_s: float = LOCK_TIMEOUT_S, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the run's lock while training it (the OS drops it if the process dies). When
    another process holds it, wait for that process to finish; ``on_wait`` hears who it is.

    Raises:
        UserError: the other process still holds it after ``timeout_s``.
    """
    path = _lock_path(cache_dir, rid)

    def tell(pid: int | None) -> None:
        if on_wait is not None:
            on_wait(f"run {rid} is being trained by process {pid or '?'}; waiting for it to finish")

    with wait_lock(path, timeout_s, tell) as acquired:
        if not acquired:
            raise UserError(
                f"run {rid} is still being trained by process {holder(path) or '?'} "
                f"after {timeout_s:.0f} s of waiting; try again later"
            )
        yield


@contextlib.contextmanager
def try_run_lock(cache_dir: Path, rid: str) -> Iterator[bool]:
    """Hold the run's lock for the block if no other process has it; yields whether it does."""
    with try_lock(_lock_path(cache_dir, rid)) as acquired:
        yield acquired


def start_partial(cache_dir: Path, info: RunInfo) -> RunFolder:
    """A fresh partial folder for a run (whatever an earlier attempt left there is removed)."""
    folder = partial_dir(cache_dir, info.run_id)
    shutil.rmtree(folder.path, ignore_errors=True)
    folder.path.mkdir(parents=True)
    write_json(folder.config, info.to_dict())
    set_status(folder, "running")
    return folder


def keep_only_status(folder: RunFolder) -> None:
    """Delete a stopped run's partial files (weights, curves) but its configuration and status:
    what the pages need to show it as cancelled, and a retry needs to start it again."""
    for entry in folder.path.iterdir():
        if entry in (folder.config, folder.status):
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def set_status(folder: RunFolder, state: str, error: str | None = None) -> None:
    write_json(folder.status, asdict(RunStatus(state, os.getpid(), error, time.time())))


def _checksum(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: RunFolder) -> None:
    """Record the size and checksum of every checked file of the folder."""
    names = [*CHECKED_FILES, *(name for name in LATER_FILES if (folder.path / name).exists())]
    write_json(
        folder.manifest,
        {
            name: {"size": (folder.path / name).stat().st_size, "blake2b": _checksum(folder.path / name)}
            for name in names
        },
    )


def commit(cache_dir: Path, rid: str) -> RunFolder:
    """Record the files' sizes and checksums, then rename the finished partial folder into
    place: the rename is the commit. A damaged folder in the way is moved aside first."""
    folder = partial_dir(cache_dir, rid)
    write_manifest(folder)
    set_status(folder, "complete")
    final = complete_dir(cache_dir, rid)
    if final.path.exists():
        move_aside(cache_dir, rid)
    os.rename(folder.path, final.path)
    return final


def move_aside(cache_dir: Path, rid: str) -> Path:
    """Move a complete-looking run folder to the cache's quarantine (never deleted)."""
    check_writable()
    return quarantine(cache_dir, complete_dir(cache_dir, rid).path)


def problem(folder: RunFolder, deep: bool = False, names: tuple[str, ...] = CHECKED_FILES) -> str | None:
    """Why a complete-looking run folder cannot be trusted, or ``None`` if it checks out:
    the sizes of ``names`` against its manifest (and their checksums with ``deep``)."""
    if not folder.manifest.exists():
        return _legacy_problem(folder, names)
    try:
        manifest = read_json(folder.manifest)
        expected = {name: (int(entry["size"]), entry["blake2b"]) for name, entry in manifest.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return "manifest.json is unreadable"
    for name, (size, checksum) in expected.items():
        if name not in names:
            continue
        path = folder.path / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
        if deep and _checksum(path) != checksum:
            return f"{name} does not match its checksum"
    return None


def _legacy_problem(folder: RunFolder, names: tuple[str, ...]) -> str | None:
    """Runs committed before manifests: every file there, none empty."""
    for name in names:
        path = folder.path / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size == 0:
            return f"{name} is empty"
    return None


def _read_summary(folder: RunFolder) -> Summary:
    try:
        return Summary.from_dict(read_json(folder.summary))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise RunDamaged(
            f"run {folder.run_id}: summary.json is unreadable ({type(error).__name__})"
        ) from None


def run_state(cache_dir: Path, rid: str) -> str:
    """One of :data:`STATES`: complete, running, failed, cancelled, interrupted (killed
    mid-way), or missing. A damaged complete folder counts as missing: it will be retrained."""
    final = complete_dir(cache_dir, rid)
    if final.path.is_dir() and problem(final) is None:
        return "complete"
    status = read_status(partial_dir(cache_dir, rid).status)
    if status is None:
        return "missing"
    state = status.state
    if state == "running" and not is_locked(cache_dir, rid):
        return "interrupted"
    if state == "complete":  # killed between marking the folder and renaming it into place
        return "interrupted"
    return state if state in STATES else "interrupted"


def is_complete(cache_dir: Path, rid: str) -> bool:
    return run_state(cache_dir, rid) == "complete"


@dataclass(frozen=True)
class Run:
    """A complete run: its summary, and its other files read on demand."""

    folder: RunFolder
    summary: Summary
    cache_dir: Path

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    def _check(self, name: str) -> None:
        trouble = problem(self.folder, deep=True, names=(name,))
        if trouble:
            raise RunDamaged(f"run {self.run_id} is damaged: {trouble}; train it again to replace it")

    def predictions(self) -> Predictions:
        """Holdout predictions, checked against the manifest and the run's holdout size.

        Raises:
            RunDamaged: the file was lost, cut short or changed since the run was committed.
        """
        self._check("predictions.csv")
        return read_predictions(self.folder.predictions, self.summary.classes, self.summary.n_holdout)

    def validation(self) -> Predictions | None:
        """Probabilities on the fixed validation set, as written at commit; ``None`` for runs
        committed before they were (:func:`core.engine.pipeline.validation_of` computes those).

        Raises:
            RunDamaged: the file was cut short or changed since the run was committed.
        """
        if not self.folder.validation.exists():
            return None
        self._check("validation.csv")
        return read_predictions(self.folder.validation, self.summary.classes, self.summary.n_val)

    def metrics(self) -> Metrics:
        return read_metrics(self.folder.metrics)

    def model(self):
        """The trained network (backbone and head), in eval mode on the CPU, without Lightning.

        Raises:
            RunDamaged: ``weights.pt`` is missing or does not match its checksum.
        """
        import torch

        from core.models.network import Network

        self._check("weights.pt")
        config = self.summary.config
        # only a frozen backbone is not in weights.pt: it is the pretrained one
        backbone = build_backbone(config.backbone, pretrained=config.mode == "frozen")
        model = Network(
            backbone, get_spec(config.backbone).num_features, len(self.summary.classes), config.mode
        )
        trained = torch.load(self.folder.weights, map_location="cpu", weights_only=True)
        model.head.load_state_dict(trained["head"])
        if "backbone" in trained:
            model.backbone.load_state_dict(trained["backbone"])
        return model.eval()

    def images(self) -> np.ndarray:
        """The run's dataset as it saw it (uint8 N x S x S x 3, dataset order), from the cache.

        Raises:
            UserError: the cached images were deleted (and the dataset may be gone too).
        """

        images = cached_array(self.summary.info.fingerprint, self.summary.config.image_size, self.cache_dir)
        if images is None:
            raise UserError(
                f"the cached images of run {self.run_id} were deleted; run it again to rebuild them"
            )
        return images


def load(cache_dir: Path, rid: str) -> Run:
    """A complete run by id.

    Raises:
        RunDamaged: its folder is there but its files do not check out.
        UserError: no complete run has this id (it may be unfinished or deleted).
    """
    folder = complete_dir(cache_dir, rid)
    if folder.path.is_dir():
        trouble = problem(folder)
        if trouble:
            raise RunDamaged(
                f"run {rid} is damaged: {trouble}; train it again to replace it "
                "(python -m core doctor --fix moves it aside)"
            )
        return Run(folder, _read_summary(folder), cache_dir)
    state = run_state(cache_dir, rid)
    hint = f"it is {state}" if state != "missing" else "it does not exist or was deleted"
    raise UserError(f"run {rid} has no complete results in {runs_dir(cache_dir)}: {hint}")


@dataclass(frozen=True)
class Listing:
    """Every complete run's summary (newest first), and the damaged ones by id with the reason."""

    summaries: list[Summary]
    damaged: dict[str, str]


def scan_runs(cache_dir: Path) -> Listing:
    """Read every complete run's summary; one bad folder never hides the others."""
    root = runs_dir(cache_dir)
    summaries, damaged = [], {}
    for path in sorted(root.iterdir()) if root.exists() else []:
        if path.name.startswith(".") or not path.is_dir():
            continue
        folder = RunFolder(path)
        trouble = problem(folder)
        try:
            if trouble is None:
                summaries.append(_read_summary(folder))
                continue
        except RunDamaged as error:
            trouble = str(error).split(": ", 1)[1]
        damaged[path.name] = trouble
    summaries.sort(key=lambda s: s.finished, reverse=True)
    return Listing(summaries, damaged)


def list_runs(cache_dir: Path) -> list[Summary]:
    """Summaries of every complete run that checks out, newest first."""
    return scan_runs(cache_dir).summaries


def complete_ids(cache_dir: Path) -> tuple[str, ...]:
    """Names of the complete-run folders, cheaply (for caches keyed on what changed)."""
    root = runs_dir(cache_dir)
    if not root.exists():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if not p.name.startswith(".")))


def delete(cache_dir: Path, rid: str) -> None:
    """Delete a complete run and its cached CAMs, at a person's request (the only deletion of a
    run; damaged ones are moved to the quarantine instead). Its dataset's cached images and
    features stay: other runs use them."""
    check_writable()
    folder = complete_dir(cache_dir, rid).path
    if not folder.is_dir():
        raise UserError(f"run {rid} has no complete results in {runs_dir(cache_dir)}; nothing to delete")
    shutil.rmtree(folder)
    shutil.rmtree(cache_dir / "cams" / rid, ignore_errors=True)
