"""Every complete run in the team's MLflow tracker (``python -m core export-runs --mlflow``).

Where: ``--mlflow URI`` (a tracking server ``http(s)://...``, a ``file:`` store, or a folder
path); bare ``--mlflow`` means the local file store ``<cache>/mlruns``, which needs no server
and travels with the cache. MLflow 3 keeps its file store in maintenance mode and refuses it
unless ``MLFLOW_ALLOW_FILE_STORE=true``: this module sets that for ``file:`` URIs, since a
store that needs no server is the point of the default. (A ``sqlite:`` store needs the full
``mlflow`` package, not ``mlflow-skinny``.)

What: one MLflow experiment, :data:`EXPERIMENT`, for every dataset, so the JSON names one
experiment and a run is one MLflow run however the export was filtered. Each run carries tags
for its dataset (folder name and content fingerprint) and its experiment label, so the MLflow
UI filters and groups by them. Per run:

- parameters: its configuration (:class:`core.store.config.RunConfig`) and set sizes;
- metrics: holdout accuracy and the threshold scores, and the training time;
- metric history: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` with ``step`` the
  epoch (0-based), timestamped as they were trained;
- artifacts: ``predictions.csv`` (one row per holdout image), ``summary.json`` (the run's
  whole record) and ``model_card.json`` (what the network takes and gives, see
  :func:`core.engine.export.run_card`; ``python -m core export`` writes the network itself).

Idempotent: each MLflow run is tagged :data:`RUN_TAG` with the run id when it is created, and
marked FINISHED only after everything is logged. A run already there and finished is skipped;
one left unfinished by an export stopped part-way is deleted and logged again: a run is one
MLflow run.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import UserError
from core.base.paths import write_json
from core.base.words import counted
from core.engine.export import run_card
from core.store import runs
from core.store.record import Summary
from core.store.tables import experiment_label, plain_experiment

EXPERIMENT = "How Much Data?"
RUN_TAG = "hmd.run_id"
STORE_FOLDER = "mlruns"  # the default file store, inside the cache
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")
BATCH = 1000  # MLflow's most metrics in one log_batch call
# a server that does not answer: a few quick retries, not MLflow's minutes of backoff
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


@dataclass(frozen=True)
class TrackerExport:
    """What ``export-runs`` did: runs newly logged, runs already there, where."""

    logged: int
    skipped: int
    experiment: str
    uri: str
    left_out: tuple[str, ...] = ()  # runs whose files do not check out (or were deleted meanwhile)

    def to_dict(self) -> dict:
        """The command-line contract: exactly these three keys."""
        return {"logged": self.logged, "skipped": self.skipped, "experiment": self.experiment}

    def sentence(self) -> str:
        """What the CLI prints for a person."""
        text = (
            f"{counted(self.logged, 'run')} logged to MLflow experiment '{self.experiment}' at {self.uri}, "
            f"{self.skipped} already there"
        )
        return text + left_out_said(self.left_out)


def left_out_said(left_out: tuple[str, ...]) -> str:
    """The end of an export's sentence for the runs it could not read (empty when none)."""
    if not left_out:
        return ""
    return f"; {counted(len(left_out), 'run')} left out, see the warnings (python -m core doctor)"


def tracking_uri(value: str | None, cache_dir: Path) -> str:
    """The URI to log to: ``value`` as given when it is a URI, a folder path as a ``file:`` URI,
    and ``None`` (bare ``--mlflow``) as the file store in the cache."""
    if value is None:
        return (Path(cache_dir) / STORE_FOLDER).resolve().as_uri()
    if ":" not in value:
        return Path(value).expanduser().resolve().as_uri()
    return value


def export_runs(cache_dir: Path, uri: str, data: Path | None = None) -> TrackerExport:
    """Log every complete run (of ``data`` only, when given) to MLflow at ``uri``.

    Raises:
        UserError: ``data`` has no complete runs, mlflow is not installed, or MLflow at ``uri``
            cannot be reached or written (the message names the URI).
    """
    summaries = complete_runs(cache_dir, data)
    mlflow_errors = _mlflow_errors()
    try:
        client = _client(uri)
        experiment_id = _experiment(client)
        done = _logged(client, experiment_id)
        logged, left_out = 0, []
        for summary in summaries:
            if summary.run_id in done:
                continue
            try:
                _log_run(client, experiment_id, runs.load(cache_dir, summary.run_id))
            except UserError as error:  # damaged, or deleted since it was listed
                print(f"warning: {error}; not logged", file=sys.stderr)
                left_out.append(summary.run_id)
                continue
            logged += 1
    except mlflow_errors as error:
        raise UserError(f"cannot log to MLflow at {uri}: {_first_line(error)}") from None
    skipped = sum(s.run_id in done for s in summaries)
    return TrackerExport(logged, skipped, EXPERIMENT, uri, tuple(left_out))


def complete_runs(cache_dir: Path, data: Path | None) -> list[Summary]:
    """The complete runs to export (of ``data`` only, when given), oldest first (the trackers
    list the newest on top).

    Raises:
        UserError: ``data`` has no complete runs.
    """
    summaries = sorted(runs.list_runs(cache_dir), key=lambda s: s.finished)
    if data is None:
        return summaries
    folder = str(Path(data).expanduser().resolve())
    mine = [s for s in summaries if s.config.data == folder]
    if not mine:
        raise UserError(f"no complete runs of {folder} in {runs.runs_dir(cache_dir)}; nothing to export")
    return mine


def _mlflow_errors() -> tuple[type[BaseException], ...]:
    """What MLflow raises for a store it cannot use: its own errors, and the file system's."""
    try:
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise UserError("MLflow is not installed; pip install mlflow-skinny (see requirements.txt)") from None
    return (MlflowException, OSError)


# MLflow's long messages for the usual mistakes, in a line that says what to do
HINTS = (
    ("unsupported URI 'sqlite", "a sqlite store needs the full mlflow package; or use file: or a folder"),
    ("unsupported URI", "MLflow cannot log there; give http(s)://HOST:PORT, file:PATH or a folder"),
    ("Failed to establish a new connection", "no MLflow server answered there"),
)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    for found, hint in HINTS:
        if found in text:
            return hint
    return text.splitlines()[0]


def _client(uri: str):
    """An MLflow client of ``uri``, the file store allowed (see the module's note)."""
    from mlflow.tracking import MlflowClient

    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return MlflowClient(tracking_uri=uri)


def _experiment(client) -> str:
    """The id of :data:`EXPERIMENT`, created on first use."""
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(
        EXPERIMENT, tags={"mlflow.note.content": "Runs of How Much Data?, one MLflow run per run."}
    )


def _logged(client, experiment_id: str) -> set[str]:
    """Run ids already logged and finished. An unfinished one (an export stopped part-way) is
    deleted here, to be logged again whole."""
    finished = set()
    for found in _our_runs(client, experiment_id):
        if found.info.status == "FINISHED":
            finished.add(found.data.tags[RUN_TAG])
        else:
            client.delete_run(found.info.run_id)
    return finished


def _our_runs(client, experiment_id: str) -> Iterator:
    """Every active MLflow run of the experiment that carries :data:`RUN_TAG`, page by page."""
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_TAG}` LIKE '%'", max_results=BATCH, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def _log_run(client, experiment_id: str, run: runs.Run) -> None:
    """One run as one MLflow run: created with its tags, then its numbers, then its files, then
    marked FINISHED.

    Raises:
        RunDamaged: its predictions do not check out (checked before anything is logged).
    """
    from mlflow.entities import Param

    summary = run.summary
    run.predictions()  # checks the file against the manifest before it is sent anywhere
    start_ms = int((summary.finished - summary.train_seconds) * 1000)
    created = client.create_run(
        experiment_id, start_time=start_ms, tags=_tags(summary), run_name=_name(summary)
    )
    mlflow_id = created.info.run_id
    params = [Param(key, value) for key, value in _params(summary).items()]
    metrics = [*_final_metrics(summary), *_history(run, start_ms)]
    for start in range(0, max(1, len(metrics)), BATCH):
        chunk = metrics[start : start + BATCH]
        client.log_batch(mlflow_id, metrics=chunk, params=() if start else params)
    _log_files(client, mlflow_id, run)
    client.set_terminated(mlflow_id, "FINISHED", end_time=int(summary.finished * 1000))


def _name(summary: Summary) -> str:
    """A run's name in the MLflow UI: dataset, slice, seeds."""
    config = summary.config
    name = f"{Path(config.data).name} · {config.slice} · seed {config.seed}"
    if config.sample_seed not in (None, config.seed):
        name += f" · sample seed {config.sample_seed}"
    return name


def _tags(summary: Summary) -> dict[str, str]:
    """What the MLflow UI filters and groups by, and the run id that makes the export idempotent."""
    config = summary.config
    return {
        RUN_TAG: summary.run_id,
        "hmd.dataset": Path(config.data).name,
        "hmd.fingerprint": summary.info.fingerprint,
        "hmd.experiment": experiment_label(config),
        "mlflow.note.content": plain_experiment(config),
    }


def _params(summary: Summary) -> dict[str, str]:
    """The configuration as MLflow parameters (strings; fields left at ``None`` are left out)."""
    values = {
        **summary.config.to_dict(),
        "n_train": summary.n_train,
        "n_val": summary.n_val,
        "n_holdout": summary.n_holdout,
        "n_classes": len(summary.classes),
        "device": summary.device,
        "features_backend": summary.features_backend,
    }
    return {key: str(value) for key, value in values.items() if value is not None}


def final_scores(summary: Summary) -> dict[str, float]:
    """The run's holdout scores and training time by metric name; an undefined score (no image
    above a threshold) is left out rather than logged as NaN."""
    values = {"holdout_accuracy": summary.accuracy, "train_seconds": summary.train_seconds}
    for score in summary.holdout.thresholds:
        t = f"{score.threshold:g}"
        values[f"holdout_threshold_accuracy_{t}"] = score.threshold_accuracy
        values[f"holdout_selective_accuracy_{t}"] = score.selective_accuracy
        values[f"holdout_coverage_{t}"] = score.coverage
    return {key: float(value) for key, value in values.items() if finite(value)}


def _final_metrics(summary: Summary) -> list:
    """The holdout scores as MLflow metrics, step 0, at the time the run finished."""
    from mlflow.entities import Metric

    at = int(summary.finished * 1000)
    return [Metric(key, value, at, 0) for key, value in final_scores(summary).items()]


def _history(run: runs.Run, start_ms: int) -> list:
    """The per-epoch curves as metric history: ``step`` is the epoch."""
    from mlflow.entities import Metric

    history = []
    for _, row in run.metrics().epochs.iterrows():
        at = start_ms + int(1000 * (row["t"] if finite(row["t"]) else 0))
        step = int(row["epoch"])
        history += [Metric(key, float(row[key]), at, step) for key in EPOCH_METRICS if finite(row[key])]
    return history


def finite(value) -> bool:
    """Whether ``value`` is a finite number (a missing or NaN score is not)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _log_files(client, mlflow_id: str, run: runs.Run) -> None:
    """``predictions.csv``, ``summary.json`` and ``model_card.json`` as the run's artifacts."""
    client.log_artifact(mlflow_id, str(run.folder.predictions))
    client.log_artifact(mlflow_id, str(run.folder.summary))
    with tempfile.TemporaryDirectory(prefix="hmd-card-") as folder:
        card = Path(folder) / "model_card.json"
        write_json(card, run_card(run.summary))
        client.log_artifact(mlflow_id, str(card))
