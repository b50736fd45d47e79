"""Ask for a run and get its results: from the cache, or trained now and committed.

This is the one entry point the CLI, the sweep and the dashboard's worker call. It reads top to
bottom: scan the dataset, resolve the configuration, draw the fixed splits and the slice
(:func:`prepare`); then, unless the run is cached, take its lock, build the model and its data
(cached features, or cached images through the network), train with Lightning, score the
holdout, write the record and commit it (:func:`train_run`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.base.device import best_device, loader_workers, single_thread
from core.base.errors import DiskFull, RunCancelled, UserError
from core.base.paths import disk_full, is_disk_full, release_reserve, write_atomic, write_json
from core.base.progress import progress
from core.data.datasets import Dataset, scan
from core.data.images import image_array
from core.data.splits import SliceSpec, Splits, make_splits
from core.engine.features import Features, cached_features
from core.models.backbones import build_backbone, get_spec
from core.models.inference import predict_probs
from core.store import runs
from core.store.config import RunConfig, grid, resolve, run_id, uses_features
from core.store.evaluate import summarize
from core.store.record import Predictions, RunInfo, Summary, write_predictions


@dataclass(frozen=True)
class PreparedRun:
    """A resolved configuration with its dataset, fixed splits and training slice."""

    config: RunConfig
    dataset: Dataset
    splits: Splits
    train_indices: np.ndarray

    @property
    def info(self) -> RunInfo:
        return RunInfo(
            run_id=run_id(self.config, self.dataset.fingerprint),
            config=self.config,
            classes=self.dataset.classes,
            fingerprint=self.dataset.fingerprint,
        )


@dataclass(frozen=True)
class Result:
    """A run's summary, and whether it was already on disk."""

    summary: Summary
    cached: bool

    def to_dict(self) -> dict:
        """The summary, whether it came from the cache, and each class's holdout accuracy with
        the 95% Wilson interval of its few images (as the Run page shows it)."""
        intervals = {name: e.to_dict() for name, e in self.summary.holdout.class_accuracies().items()}
        return {**self.summary.to_dict(), "per_class_accuracy_interval": intervals, "cached": self.cached}


def prepare(
    config: RunConfig, cache_dir: Path, show_progress: bool = False, dataset: Dataset | None = None
) -> PreparedRun:
    """Scan the dataset (unless given), resolve the configuration, draw the splits and the slice.

    Raises:
        UserError: bad configuration or data; nothing is written.
    """
    dataset = dataset or scan(config.data, cache_dir, progress=show_progress)
    config = resolve(config, dataset.median_side)
    splits = make_splits(dataset.labels, dataset.classes, *config.split)
    train = splits.slice_indices(SliceSpec.parse(config.slice), config.sample_seed, dataset.classes)
    return PreparedRun(config, dataset, splits, train)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_run(
    config: RunConfig,
    cache_dir: Path,
    show_progress: bool = False,
    dataset: Dataset | None = None,
    new_request: bool = True,
    on_wait: Callable[[str], None] = _say,
) -> Result:
    """The run's summary, from the cache or trained now.

    ``dataset`` is the scanned ``config.data`` when the caller has it already (a sweep).
    ``new_request``: someone asks for this run now, so a cancel file left by an earlier,
    killed attempt is dropped. The job worker passes False: a cancel sent after it took the
    job off the queue, before training began, must still stop it. When another process is
    training the same run, this waits for it (``on_wait`` hears why) and returns its result.

    Raises:
        UserError: bad configuration or data (before anything is written), or backbone weights
            that cannot be loaded (the run is marked failed).
        DiskFull: the disk filled up (the run is marked failed; finished runs are untouched).
        RunCancelled: a ``cancel`` file appeared while training (the run is marked cancelled).
    """
    prepared = prepare(config, cache_dir, show_progress, dataset)
    info = prepared.info
    if runs.is_complete(cache_dir, info.run_id):
        return Result(runs.load(cache_dir, info.run_id).summary, cached=True)
    with runs.run_lock(cache_dir, info.run_id, on_wait=on_wait):
        if runs.is_complete(cache_dir, info.run_id):  # trained by another process while we waited
            return Result(runs.load(cache_dir, info.run_id).summary, cached=True)
        if new_request:
            runs.cancel_path(cache_dir, info.run_id).unlink(missing_ok=True)
        # the fresh partial folder comes first: while images are decoded and features
        # extracted, nobody should read an earlier attempt's progress as this one's
        folder = runs.partial_dir(cache_dir, info.run_id)
        try:
            runs.start_partial(cache_dir, info)
            summary = _train_and_score(prepared, folder, cache_dir, show_progress)
            runs.commit(cache_dir, info.run_id)
        except BaseException as error:
            raise _record_failure(cache_dir, folder, error) from error
    return Result(summary, cached=False)


def _record_failure(cache_dir: Path, folder: runs.RunFolder, error: BaseException) -> BaseException:
    """Mark the partial run cancelled or failed with a one-line reason; the error to raise."""
    if is_disk_full(error):
        release_reserve(cache_dir)  # so that the status below can still be written
        error = error if isinstance(error, DiskFull) else disk_full(folder.path)
    # Lightning catches Ctrl+C itself and exits with SystemExit(1)
    stopped = isinstance(error, RunCancelled | KeyboardInterrupt | SystemExit)
    message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    with contextlib.suppress(DiskFull):  # not even the reserve made room: the error still goes up
        folder.path.mkdir(parents=True, exist_ok=True)
        runs.set_status(folder, "cancelled" if stopped else "failed", error=message.splitlines()[0])
        if stopped:  # asked to stop: its half-trained files are of no use (a failure's are kept)
            runs.keep_only_status(folder)
    return error


def _train_and_score(
    prepared: PreparedRun, folder: runs.RunFolder, cache_dir: Path, show_progress: bool
) -> Summary:
    from core.engine.training import fit

    config = prepared.config
    inputs = run_inputs(config, prepared.dataset, cache_dir)
    if uses_features(config):
        # a lone head that is cancelled ends its fit with RunCancelled: never None here
        (summary,) = _fit_heads([prepared], inputs, [folder], cache_dir, show_progress)
        return summary
    model, data = _build_network(prepared, inputs.array)
    started = time.time()
    cancel = runs.cancel_path(cache_dir, folder.run_id)
    model = fit(model, data, config.epochs, folder, config.backbone, cancel, show_progress)
    return _record(prepared, model, inputs, folder, time.time() - started)


def _fit_heads(
    group: list[PreparedRun],
    inputs: Features,
    folders: list[runs.RunFolder],
    cache_dir: Path,
    show_progress: bool = False,
) -> list[Summary | None]:
    """Train and record runs' heads on the same cached features; a run trained alone is a group
    of one. On one thread: the same bits on any machine and executor (see :func:`single_thread`).
    ``None`` for a run cancelled while the others went on.

    Raises:
        RunCancelled: every run was cancelled.
    """
    cancels = [runs.cancel_path(cache_dir, folder.run_id) for folder in folders]
    with single_thread():
        if group[0].config.solver == "adamw":
            return _stack_heads(group, inputs, folders, cancels, show_progress)
        return _solve_heads(group, inputs, folders, cancels)


def _solve_heads(
    group: list[PreparedRun], inputs: Features, folders: list[runs.RunFolder], cancels: list[Path]
) -> list[Summary | None]:
    """Each run's head fitted to convergence (:mod:`core.engine.head_solver`), one after another: each
    solve is full-batch, so there is no per-step cost to share. The pool's whitening is computed
    once; a run's ``train_seconds`` is its own solve plus its share of that."""
    import torch

    from core.engine.head_solver import Whitening, fit_convex_head

    first = group[0]
    started = time.time()
    features = torch.from_numpy(np.array(inputs.array))
    labels = torch.from_numpy(first.dataset.labels.astype(np.int64))
    whitening = Whitening.of_pool(inputs.array, np.concatenate(first.splits.pools))
    shared = (time.time() - started) / len(group)
    summaries: list[Summary | None] = []
    for prepared, folder, cancel in zip(group, folders, cancels, strict=True):
        started = time.time()
        model = _build_head(prepared).model
        try:
            fit_convex_head(
                model.head,
                features,
                labels,
                prepared.train_indices,
                first.splits.val,
                whitening,
                prepared.config.lr,
                prepared.config.epochs,
                folder,
                cancel,
            )
        except RunCancelled:
            summaries.append(None)
            continue
        seconds = shared + time.time() - started
        summaries.append(_record(prepared, model.eval(), inputs, folder, seconds))
    if all(summary is None for summary in summaries):
        raise RunCancelled(f"run {', '.join(folder.run_id for folder in folders)} cancelled")
    return summaries


def _stack_heads(
    group: list[PreparedRun],
    inputs: Features,
    folders: list[runs.RunFolder],
    cancels: list[Path],
    show_progress: bool,
) -> list[Summary | None]:
    """AdamW heads trained together in one Lightning fit (:func:`core.engine.training.fit_heads`); each
    run's ``train_seconds`` is its share of the fit."""
    from core.engine.training import fit_heads

    first = group[0]
    heads = [_build_head(prepared) for prepared in group]
    started = time.time()
    models = fit_heads(
        heads,
        inputs.array,
        first.dataset.labels,
        first.splits.val,
        first.config.epochs,
        folders,
        cancels,
        show_progress,
    )
    share = (time.time() - started) / len(group)
    return [
        None if model is None else _record(prepared, model, inputs, folder, share)
        for prepared, model, folder in zip(group, models, folders, strict=True)
    ]


def _record(
    prepared: PreparedRun, model, inputs: Features, folder: runs.RunFolder, seconds: float
) -> Summary:
    """Save a trained run's weights, its holdout and validation predictions and its summary."""
    dataset, splits = prepared.dataset, prepared.splits
    _save_weights(model, prepared.config, folder)
    holdout = score(model, inputs.array, dataset, splits.holdout)
    write_predictions(folder.predictions, holdout)
    write_predictions(folder.validation, score(model, inputs.array, dataset, splits.val))
    summary = Summary(
        info=prepared.info,
        n_train=len(prepared.train_indices),
        n_val=len(splits.val),
        n_holdout=len(splits.holdout),
        holdout=summarize(holdout.probs, holdout.labels, dataset.classes),
        train_seconds=round(seconds, 2),
        finished=time.time(),
        device=best_device().type,
        features_backend=inputs.backend,
    )
    write_json(folder.summary, summary.to_dict())
    return summary


def train_heads(
    group: list[PreparedRun], cache_dir: Path, show_progress: bool = False, new_request: bool = True
) -> dict[str, Result]:
    """Runs that train heads on the same cached features and split for as many epochs, with
    one batch size, trained together (:func:`_fit_heads`): each gets its own folder, curves and
    predictions, the same as when trained alone. Runs that another process is training, or
    that are complete, are left out (the caller asks for them one by one). Returns the trained
    runs' results by run id. ``new_request``: as :func:`train_run`.

    Raises:
        RunCancelled: runs of the group were cancelled while training; they are marked
            cancelled, and every other run of the group is committed first.
        DiskFull: as :func:`train_run` (every run of the group is marked failed).
    """
    with contextlib.ExitStack() as held:
        mine = [
            p
            for p in group
            if held.enter_context(runs.try_run_lock(cache_dir, p.info.run_id))
            and not runs.is_complete(cache_dir, p.info.run_id)
        ]
        if not mine:
            return {}
        inputs = run_inputs(mine[0].config, mine[0].dataset, cache_dir)
        folders = []
        try:
            for prepared in mine:
                if new_request:
                    runs.cancel_path(cache_dir, prepared.info.run_id).unlink(missing_ok=True)
                folders.append(runs.partial_dir(cache_dir, prepared.info.run_id))
                runs.start_partial(cache_dir, prepared.info)
            summaries = _fit_heads(mine, inputs, folders, cache_dir, show_progress)
            for summary in summaries:
                if summary is not None:
                    runs.commit(cache_dir, summary.run_id)
        except BaseException as error:
            raised = [_record_failure(cache_dir, folder, error) for folder in folders]
            raise (raised[0] if raised else error) from error
        stopped = [f.run_id for f, s in zip(folders, summaries, strict=True) if s is None]
        for folder in folders:
            if folder.run_id in stopped:
                _record_failure(cache_dir, folder, RunCancelled(f"run {folder.run_id} cancelled"))
    if stopped:
        raise RunCancelled(f"run {', '.join(stopped)} cancelled (the runs trained beside it are saved)")
    return {s.run_id: Result(s, cached=False) for s in summaries}


def score(model, inputs: np.ndarray, dataset: Dataset, indices: np.ndarray) -> Predictions:
    """A trained model's probabilities on some of a dataset's images (``inputs`` holds every
    image's cached pixels or features, in dataset order)."""
    return Predictions(
        classes=dataset.classes,
        image_index=indices,
        paths=tuple(dataset.paths[i] for i in indices),
        labels=dataset.labels[indices],
        probs=predict_probs(model, inputs[indices]),
    )


def run_inputs(config: RunConfig, dataset: Dataset, cache_dir: Path) -> Features:
    """What a run's model reads, for every image of its dataset: cached features when the
    backbone is frozen and the images are not augmented (computed by the configuration's
    backend; runs from before backends were recorded used eager fp32), else cached images
    (with no backend)."""

    if uses_features(config):
        backend = config.features or "eager-fp32"
        return cached_features(dataset, config.backbone, config.image_size, cache_dir, backend)
    return Features(image_array(dataset, config.image_size, cache_dir), None)


def _build_head(prepared: PreparedRun):
    """A new head on cached features and the rows it trains on."""
    from core.engine import training
    from core.models.classifier import Classifier

    config, train = prepared.config, prepared.train_indices
    _seed(config.seed)
    model = Classifier(
        None,
        get_spec(config.backbone).num_features,
        len(prepared.dataset.classes),
        config.lr,
        config.mode,
        n_train=len(train),
    )
    return training.HeadRun(model, train, config.batch_size, config.seed)


def _build_network(prepared: PreparedRun, inputs: np.ndarray):
    """The network and its data on cached images (``inputs``: see :func:`run_inputs`)."""
    from core.engine import training
    from core.models.classifier import Classifier

    config, dataset, splits = prepared.config, prepared.dataset, prepared.splits
    train = prepared.train_indices
    spec = get_spec(config.backbone)
    num_classes = len(dataset.classes)
    _seed(config.seed)
    backbone = build_backbone(config.backbone, pretrained=config.mode != "scratch")
    model = Classifier(
        backbone, spec.num_features, num_classes, config.lr, config.mode, config.aug, n_train=len(train)
    )
    data = training.image_data(
        inputs,
        dataset.labels,
        train,
        splits.val,
        config.aug,
        config.batch_size,
        config.seed,
        workers=loader_workers(config.aug),
    )
    return model, data


def _seed(seed: int) -> None:
    """Seed every generator right before the model is built, after any cache was filled: what
    a cold cache computes must not shift the random numbers a run starts from."""
    import lightning as L

    L.seed_everything(seed, workers=True, verbose=False)


def _save_weights(model, config: RunConfig, folder: runs.RunFolder) -> None:
    """The head, and the backbone unless it is the frozen pretrained one (rebuilt on load)."""
    import torch

    trained = {"head": model.head.state_dict()}  # saved while on the CPU, where fit leaves it
    if config.mode != "frozen":
        trained["backbone"] = model.backbone.state_dict()
    write_atomic(folder.weights, lambda handle: torch.save(trained, handle))


def grid_runs(
    base: RunConfig,
    slices: Iterable[str],
    seeds: Iterable[int],
    cache_dir: Path,
    show_progress: bool = False,
    sample_seeds: Iterable[int] | None = None,
) -> list[PreparedRun]:
    """Every slice for every seed (see :func:`core.store.config.grid`), each configuration checked
    and prepared before anything runs (here or on Ray: :func:`core.serving.ray_executor.sweep`)."""
    dataset = scan(base.data, cache_dir, progress=show_progress)
    configs = grid(base, list(slices), list(seeds), None if sample_seeds is None else list(sample_seeds))
    return [prepare(config, cache_dir, dataset=dataset) for config in configs]


def sweep(
    base: RunConfig,
    slices: Iterable[str],
    seeds: Iterable[int],
    cache_dir: Path,
    show_progress: bool = False,
    sample_seeds: Iterable[int] | None = None,
) -> list[Result]:
    """:func:`grid_runs`, trained here one after another, skipping cached runs; resumable."""
    prepared = grid_runs(base, slices, seeds, cache_dir, show_progress, sample_seeds)
    return train_together(prepared, cache_dir, show_progress)


def train_together(prepared: list[PreparedRun], cache_dir: Path, show_progress: bool = False) -> list[Result]:
    """Every run of ``prepared``, from the cache or trained now: the heads that share a
    :func:`head_group` together (:func:`train_heads`), then every other run one by one
    (:func:`train_run`, which also waits for a run another process holds). In order."""
    trained: dict[str, Result] = {}
    groups = _head_groups(prepared, cache_dir)
    for group in progress(groups, "heads trained together", enabled=show_progress, unit="group"):
        trained |= train_heads(group, cache_dir)
    return [
        trained.get(p.info.run_id) or train_run(p.config, cache_dir, dataset=p.dataset)
        for p in progress(prepared, "sweep", enabled=show_progress, unit="run")
    ]


HEADS_PER_FIT = 64  # at most, trained together: 64 x 256 rows x 1,280 features is an 84 MB batch


def head_group(config: RunConfig) -> tuple | None:
    """What runs share to train their heads together (:func:`train_heads`): the dataset, its
    cached features and split, the solver, the epochs and the batch size. ``None`` for a run
    through the network."""
    if not uses_features(config):
        return None
    c = config
    return (
        c.data,
        c.backbone,
        c.image_size,
        c.features,
        c.holdout,
        c.val,
        c.split_seed,
        c.solver,
        c.epochs,
        c.batch_size,
    )


def _head_groups(prepared: list[PreparedRun], cache_dir: Path) -> list[list[PreparedRun]]:
    """The runs not yet cached that share a :func:`head_group`, in groups of two to
    :data:`HEADS_PER_FIT`."""
    groups: dict[tuple, list[PreparedRun]] = {}
    for p in prepared:
        key = head_group(p.config)
        if key is not None and not runs.is_complete(cache_dir, p.info.run_id):
            groups.setdefault(key, []).append(p)
    chunks = [
        group[i : i + HEADS_PER_FIT] for group in groups.values() for i in range(0, len(group), HEADS_PER_FIT)
    ]
    return [chunk for chunk in chunks if len(chunk) > 1]


def validation_of(run: runs.Run) -> Predictions:
    """A run's probabilities on its fixed validation set: as written at commit, or computed now
    from its model for runs committed before that (their dataset folder must still be there).

    Raises:
        UserError: the run's dataset folder is gone or its images changed.
    """
    recorded = run.validation()
    if recorded is not None:
        return recorded
    config = run.summary.config
    dataset = scan(config.data, run.cache_dir)
    if dataset.fingerprint != run.summary.info.fingerprint:
        raise UserError(
            f"run {run.run_id}: the images in {config.data} changed since it was trained; its "
            "validation set cannot be rebuilt (train it again)"
        )
    splits = make_splits(dataset.labels, dataset.classes, *config.split)
    model = run.model()  # with its backbone; on cached features only the head reads them
    net = model.head if uses_features(config) else model
    return score(net, run_inputs(config, dataset, run.cache_dir).array, dataset, splits.val)
