"""Ask for a run and get its results: from the cache, or trained now and committed.

This is the one entry point the CLI, the sweep and the dashboard's worker call. It ties the
pieces together: scan the dataset, draw the fixed splits and the slice, pick the fast path
(cached features) or the image path, train with Lightning, score the holdout, commit.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core import runs
from core.backbones import build_backbone, get_spec
from core.datasets import Dataset, scan
from core.device import best_device, loader_workers
from core.errors import RunCancelled, UserError
from core.evaluate import predict_probs, summarize
from core.images import image_array
from core.paths import read_json, write_json
from core.progress import progress
from core.splits import SliceSpec, Splits, make_splits


def prepare(config: runs.RunConfig, cache_dir: Path, show_progress: bool = False,
            dataset: Dataset | None = None) -> tuple[runs.RunConfig, Dataset, Splits, np.ndarray]:
    """Scan the dataset (unless given), resolve the configuration, draw the splits and the slice."""
    dataset = dataset or scan(config.data, cache_dir, progress=show_progress)
    config = runs.resolve(config, dataset.median_side)
    splits = make_splits(dataset.labels, dataset.classes, config.holdout, config.val,
                         config.split_seed)
    train = splits.train(SliceSpec.parse(config.slice), config.sample_seed, dataset.classes)
    return config, dataset, splits, train


def train_run(config: runs.RunConfig, cache_dir: Path, show_progress: bool = False,
              dataset: Dataset | None = None, new_request: bool = True) -> dict:
    """The run's summary, with ``cached`` telling whether it was already on disk.

    ``dataset`` is the scanned ``config.data`` when the caller has it already (a sweep).
    ``new_request``: someone asks for this run now, so a cancel file left by an earlier,
    killed attempt is dropped. The job worker passes False: a cancel sent after it took the
    job off the queue, before training began, must still stop it.

    Raises:
        UserError: bad configuration or data (before anything is written), or backbone weights
            that cannot be loaded (the run is marked failed).
        RunCancelled: a ``cancel`` file appeared while training (the run is marked cancelled).
    """
    config, dataset, splits, train = prepare(config, cache_dir, show_progress, dataset)
    rid = runs.run_id(config, dataset.fingerprint)
    if runs.is_complete(cache_dir, rid):
        return {**runs.load_summary(runs.complete_dir(cache_dir, rid)), "cached": True}
    with runs.run_lock(cache_dir, rid):
        if runs.is_complete(cache_dir, rid):  # finished by another process while we waited
            return {**runs.load_summary(runs.complete_dir(cache_dir, rid)), "cached": True}
        if new_request:
            runs.cancel_path(cache_dir, rid).unlink(missing_ok=True)
        record = {"run_id": rid, "config": config.to_dict(), "classes": list(dataset.classes),
                  "fingerprint": dataset.fingerprint}
        # the fresh partial folder comes first: while images are decoded and features
        # extracted, nobody should read an earlier attempt's progress as this one's
        folder = runs.start_partial(cache_dir, rid, record)
        try:
            model, data, holdout_inputs = _build(config, dataset, splits, train, cache_dir)
            summary = _train_and_score(config, dataset, splits, train, model, data,
                                       holdout_inputs, folder, record, cache_dir, show_progress)
        except BaseException as error:
            # Lightning catches Ctrl+C itself and exits with SystemExit(1)
            stopped = isinstance(error, RunCancelled | KeyboardInterrupt | SystemExit)
            state = "cancelled" if stopped else "failed"
            runs.set_status(folder, state, error=f"{type(error).__name__}: {error}".splitlines()[0])
            raise
        runs.commit(cache_dir, rid)
    return {**summary, "cached": False}


def _build(config: runs.RunConfig, dataset: Dataset, splits: Splits, train: np.ndarray,
           cache_dir: Path):
    """The model and data for a run: cached features when the backbone is frozen and the
    images are not augmented, else cached images through the network."""
    from core import train as training
    from core.features import cached_features

    spec = get_spec(config.backbone)
    num_classes = len(dataset.classes)
    if runs.uses_features(config):
        features = cached_features(dataset, config.backbone, config.image_size, cache_dir)
        _seed(config.seed)
        model = training.Classifier(None, spec.num_features, num_classes, config.lr, config.mode,
                                    n_train=len(train))
        data = training.feature_data(features, dataset.labels, train, splits.val,
                                     config.batch_size, config.seed)
        return model, data, features[splits.holdout]
    images = image_array(dataset, config.image_size, cache_dir)
    _seed(config.seed)
    backbone = build_backbone(config.backbone, pretrained=config.mode != "scratch")
    model = training.Classifier(backbone, spec.num_features, num_classes, config.lr,
                                config.mode, config.aug, n_train=len(train))
    data = training.image_data(images, dataset.labels, train, splits.val, config.aug,
                               config.batch_size, config.seed, workers=loader_workers(config.aug))
    return model, data, images[splits.holdout]


def _seed(seed: int) -> None:
    """Seed every generator right before the model is built, after any cache was filled: what
    a cold cache computes must not shift the random numbers a run starts from."""
    import lightning as L

    L.seed_everything(seed, workers=True, verbose=False)


def _train_and_score(config, dataset, splits, train, model, data, holdout_inputs, folder: Path,
                     record: dict, cache_dir: Path, show_progress: bool) -> dict:
    import torch

    from core.train import fit

    started = time.time()
    model = fit(model, data, config.epochs, folder, config.backbone,
                runs.cancel_path(cache_dir, record["run_id"]), show_progress)
    seconds = time.time() - started
    trained = {"head": model.head.state_dict()}  # saved while on the CPU, where fit leaves it
    if config.mode != "frozen":
        trained["backbone"] = model.backbone.state_dict()
    torch.save(trained, folder / "weights.pt")
    probs = predict_probs(model, holdout_inputs)
    labels = dataset.labels[splits.holdout]
    _write_predictions(folder, dataset, splits.holdout, probs)
    scores = summarize(probs, labels, dataset.classes)
    summary = {
        **record, "n_train": int(len(train)), "n_val": int(len(splits.val)),
        "n_holdout": int(len(splits.holdout)), "holdout_accuracy": scores.pop("accuracy"),
        **scores, "train_seconds": round(seconds, 2), "finished": time.time(),
        "device": best_device().type,
    }
    write_json(folder / "summary.json", summary)
    return summary


def _write_predictions(folder: Path, dataset: Dataset, indices: np.ndarray, probs: np.ndarray) -> None:
    import pandas as pd

    labels = dataset.labels[indices]
    frame = pd.DataFrame({
        "image_index": indices, "path": [dataset.paths[i] for i in indices],
        "label": labels, "true": [dataset.classes[i] for i in labels],
        "pred": [dataset.classes[i] for i in probs.argmax(1)],
        "p_true": probs[np.arange(len(labels)), labels], "p_max": probs.max(1),
    })
    for k, name in enumerate(dataset.classes):
        frame[f"p:{name}"] = probs[:, k]
    frame.to_csv(folder / "predictions.csv", index=False)


def sweep(base: runs.RunConfig, slices: Iterable[str], seeds: Iterable[int], cache_dir: Path,
          show_progress: bool = False) -> list[dict]:
    """Every slice for every seed (sample seed = seed), skipping cached runs; resumable."""
    dataset = scan(base.data, cache_dir, progress=show_progress)
    grid = [(s, seed) for s in slices for seed in seeds]
    results = []
    for slice_text, seed in progress(grid, "sweep", enabled=show_progress, unit="run"):
        config = dataclasses.replace(base, slice=slice_text, seed=seed, sample_seed=None)
        results.append(train_run(config, cache_dir, dataset=dataset))
    return results


def load_model(cache_dir: Path, rid: str):
    """The trained classifier of a complete run, in eval mode on the CPU."""
    import torch

    from core.train import Classifier

    folder = runs.find_run(cache_dir, rid)
    record = read_json(folder / "config.json")
    config = runs.RunConfig(**record["config"])
    if not (folder / "weights.pt").exists():
        raise UserError(f"run {rid} has lost its weights.pt; delete its folder {folder} and run it again")
    # only a frozen backbone is not in weights.pt: it is the pretrained one
    backbone = build_backbone(config.backbone, pretrained=config.mode == "frozen")
    model = Classifier(backbone, get_spec(config.backbone).num_features, len(record["classes"]),
                       config.lr, config.mode)
    trained = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    model.head.load_state_dict(trained["head"])
    if "backbone" in trained:
        model.backbone.load_state_dict(trained["backbone"])
    return model.eval()


def evaluate_folder(cache_dir: Path, rid: str, data: str | Path, show_progress: bool = False) -> dict:
    """Score a trained run on another labelled folder whose classes are among the run's.

    Raises:
        UserError: the run is missing, or the folder has a class the run never saw.
    """
    folder = runs.find_run(cache_dir, rid)
    record = read_json(folder / "config.json")
    classes = record["classes"]
    dataset = scan(data, cache_dir, progress=show_progress)
    unknown = [name for name in dataset.classes if name not in classes]
    if unknown:
        raise UserError(f"{dataset.root}: class folder(s) {', '.join(unknown)} are not among the "
                        f"run's classes ({', '.join(classes)})")
    labels = np.array([classes.index(dataset.classes[i]) for i in dataset.labels])
    images = image_array(dataset, record["config"]["image_size"], cache_dir)
    probs = predict_probs(load_model(cache_dir, rid), images)
    scores = summarize(probs, labels, classes)
    return {"run_id": rid, "data": str(dataset.root), "unreadable": len(dataset.unreadable), **scores}
