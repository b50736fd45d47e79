"""Every complete run as TensorBoard event files (``python -m core export-runs --tensorboard``),
for the teams that keep their curves in TensorBoard rather than MLflow.

Where: ``--tensorboard DIR``, bare: ``<cache>/tensorboard``; ``tensorboard --logdir DIR`` then
shows every run. One folder per run, ``<dataset>/<slice>_seed<seed>_sample<sample seed>_<run id>``,
so TensorBoard's run filter finds a dataset or a slice by name. Per run: the per-epoch curves
(``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, step = epoch, at the wall time they
were trained), the holdout scores (step 0) and the configuration as text.

Idempotent as the MLflow export is: a run's events are written into ``<folder>.partial`` and the
folder renamed into place with its :data:`DONE` marker only once whole, so a run already there is
skipped, and one left half-written by an export stopped part-way is written again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UserError
from core.base.paths import check_writable, write_json
from core.base.words import counted
from core.engine.tracker import EPOCH_METRICS, complete_runs, final_scores, finite, left_out_said
from core.store import runs
from core.store.record import Summary

FOLDER = "tensorboard"  # the default log folder, inside the cache
DONE = "exported.json"  # written last into a run's folder: the run is there whole


@dataclass(frozen=True)
class TensorBoardExport:
    """What ``export-runs --tensorboard`` did: runs newly written, runs already there, where."""

    logged: int
    skipped: int
    folder: str
    left_out: tuple[str, ...] = ()  # runs whose files do not check out (or were deleted meanwhile)

    def to_dict(self) -> dict:
        return {"logged": self.logged, "skipped": self.skipped, "folder": self.folder}

    def sentence(self) -> str:
        text = (
            f"{counted(self.logged, 'run')} written as TensorBoard events to {self.folder}, "
            f"{self.skipped} already "
            f"there (tensorboard --logdir {self.folder})"
        )
        return text + left_out_said(self.left_out)


def log_folder(value: str | None, cache_dir: Path) -> Path:
    """The folder to write to: ``value`` as given, or ``<cache>/tensorboard`` when bare."""
    return (Path(value).expanduser() if value else Path(cache_dir) / FOLDER).resolve()


def run_folder(folder: Path, summary: Summary) -> Path:
    """Where one run's events go under ``folder``: by dataset, then slice and seeds, then id."""
    config = summary.config
    sample = config.seed if config.sample_seed is None else config.sample_seed
    name = f"{config.slice.replace('/', 'per')}_seed{config.seed}_sample{sample}_{summary.run_id}"
    return folder / Path(config.data).name / name


def export_events(cache_dir: Path, folder: Path, data: Path | None = None) -> TensorBoardExport:
    """Write every complete run (of ``data`` only, when given) as event files under ``folder``.

    Raises:
        UserError: ``data`` has no complete runs, or ``folder`` cannot be written.
    """
    import sys

    summaries = complete_runs(cache_dir, data)
    logged, skipped, left_out = 0, 0, []
    for summary in summaries:
        target = run_folder(folder, summary)
        if (target / DONE).exists():
            skipped += 1
            continue
        try:
            _write_run(runs.load(cache_dir, summary.run_id), target)
        except UserError as error:  # damaged, or deleted since it was listed
            print(f"warning: {error}; not written", file=sys.stderr)
            left_out.append(summary.run_id)
            continue
        except OSError as error:
            raise UserError(f"cannot write TensorBoard events to {folder}: {error}") from None
        logged += 1
    return TensorBoardExport(logged, skipped, str(folder), tuple(left_out))


def _write_run(run: runs.Run, target: Path) -> None:
    """One run's events into ``target.partial``, renamed to ``target`` once whole."""
    from torch.utils.tensorboard import SummaryWriter

    check_writable()
    summary = run.summary
    run.predictions()  # checks the run's files against its manifest before anything is written
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an export stopped part-way
    shutil.rmtree(target, ignore_errors=True)  # a folder without its marker is not whole
    start = summary.finished - summary.train_seconds
    writer = SummaryWriter(log_dir=str(partial))
    try:
        for _, row in run.metrics().epochs.iterrows():
            at = start + (float(row["t"]) if finite(row["t"]) else 0.0)
            for key in EPOCH_METRICS:
                if finite(row[key]):
                    writer.add_scalar(key, float(row[key]), int(row["epoch"]), walltime=at)
        for key, value in final_scores(summary).items():
            writer.add_scalar(key, float(value), 0, walltime=summary.finished)
        writer.add_text("config", f"```\n{json.dumps(summary.config.to_dict(), indent=1)}\n```", 0)
    finally:
        writer.close()
    write_json(partial / DONE, {"run_id": summary.run_id})
    partial.rename(target)
