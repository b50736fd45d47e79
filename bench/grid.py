"""1. The original grid with a frozen backbone: cold, warm and fully cached, against a plain
PyTorch loop a competent user would write (features computed once for the grid, an AdamW head
per run);
and the head's holdout accuracy and time against scikit-learn's logistic regression on the same
features, its C chosen on the same validation set from the same grid (what the engine does)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from bench.measure import Row, timed
from core.base.paths import DEFAULT_DATA
from core.data.datasets import scan
from core.data.images import image_array
from core.data.splits import ORIGINAL_SLICES
from core.engine.features import cached_features
from core.engine.pipeline import Result, prepare, sweep
from core.models.backbones import build_backbone
from core.models.inference import outputs
from core.store import runs
from core.store.config import DEFAULTS, ORIGINAL_BACKBONE, ORIGINAL_SEEDS, RunConfig

QUICK_SLICES = ("1/class", "3/class", "5%", "20%")
NAIVE = DEFAULTS["features-adamw"]  # the plain loop trains an AdamW head, epoch by epoch
BASE = RunConfig(data=str(DEFAULT_DATA), backbone=ORIGINAL_BACKBONE, mode="frozen", slice="1/class")


def run(cache: Path, full: bool) -> tuple[list[Row], list[Result]]:
    slices, seeds = (ORIGINAL_SLICES, ORIGINAL_SEEDS) if full else (QUICK_SLICES, (1,))
    grid = f"{len(slices)} slices x {len(seeds)} seed(s)"
    _, cold = timed(lambda: sweep(BASE, slices, seeds, cache))
    shutil.rmtree(runs.runs_dir(cache))
    _, warm = timed(lambda: sweep(BASE, slices, seeds, cache))
    results, cached = timed(lambda: sweep(BASE, slices, seeds, cache))
    plain, plain_heads = _plain_loop(cache, slices, seeds)
    note = (
        f"{grid}; plain loop: features once for the grid, then {NAIVE['epochs']} AdamW epochs a run "
        "(ours: L-BFGS to convergence over a path of penalties)"
    )
    rows = [
        Row("grid", "cold (empty cache) vs a plain PyTorch loop", cold, plain, "s", "lower", note=note),
        Row(
            "grid",
            "warm (features cached) vs the plain loop's heads",
            warm,
            plain_heads,
            "s",
            "lower",
            note=note,
        ),
        Row("grid", "fully cached sweep", cached, None, "s", better="lower", target=1.0, note=grid),
        *_against_logistic_regression(cache, slices, seeds, results),
        _warm_cli_against_logistic_regression(cache),
    ]
    return rows, results


def _warm_cli_against_logistic_regression(cache: Path) -> Row:
    """What a user waits for: ``python -m core sweep`` over the original 39-run grid with
    features cached and no run cached, the process start included, against fitting
    scikit-learn's LogisticRegression (C=1) on the same cached features for the same slices and
    seeds, C chosen on the validation set (:func:`sklearn_head`, what a user would write). The
    whole grid in quick mode too: the target is set on it, and on a few small runs the process
    start alone would decide the ratio."""
    slices, seeds = ORIGINAL_SLICES, ORIGINAL_SEEDS
    import subprocess
    import sys
    import time

    dataset = scan(BASE.data, cache)
    theirs = 0.0
    for text in slices:
        for seed in seeds:
            prepared = prepare(dataclasses.replace(BASE, slice=text, seed=seed), cache, dataset=dataset)
            features = cached_features(
                dataset, prepared.config.backbone, prepared.config.image_size, cache, prepared.config.features
            ).array
            started = time.perf_counter()
            sklearn_head(features, dataset.labels, prepared)
            theirs += time.perf_counter() - started
    shutil.rmtree(runs.runs_dir(cache))
    command = [sys.executable, "-m", "core", "--cache", str(cache), "sweep", "--data", BASE.data, "--json"]
    command += ["--slices", ",".join(slices), "--seeds", ",".join(map(str, seeds))]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    ours = time.perf_counter() - started
    note = f"{len(slices)} slices x {len(seeds)} seeds, interpreter start included"
    # the target: at least 8x faster than the scikit-learn loop
    return Row("grid", "warm sweep through the CLI vs scikit-learn", ours, theirs, "s", "lower", 1 / 8, note)


def sklearn_head(features: np.ndarray, labels: np.ndarray, prepared):
    """scikit-learn's LogisticRegression on standardised features, C chosen by validation
    log-loss over the engine's grid: the fitted model and the scaling it reads."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from core.engine.head_solver import PATH

    pool = np.concatenate(prepared.splits.pools)
    mean, std = features[pool].mean(0), features[pool].std(0) + 1e-6

    def scale(x: np.ndarray) -> np.ndarray:
        return (x - mean) / std

    train, val = prepared.train_indices, prepared.splits.val
    best = None
    for c in PATH:
        model = LogisticRegression(C=c, max_iter=3000).fit(scale(features[train]), labels[train])
        loss = log_loss(labels[val], model.predict_proba(scale(features[val])), labels=model.classes_)
        if best is None or loss < best[0]:
            best = (loss, model)
    return best[1], scale


def _plain_loop(cache: Path, slices, seeds) -> tuple[float, float]:
    """What a competent user writes without this tool, timed: the backbone over the training pool
    and validation images once, features kept in memory for the whole grid, then for every run an
    AdamW head for :data:`NAIVE`'s epochs on them, scored on the validation features after each
    epoch. The decoded images come from our cache (decoding is not timed). The seconds of the
    whole loop, and of its heads alone (what a warm grid compares with)."""
    import time

    import torch

    dataset = scan(BASE.data, cache)
    prepared = [
        prepare(dataclasses.replace(BASE, slice=text, seed=seed), cache, dataset=dataset)
        for text in slices
        for seed in seeds
    ]
    images = image_array(dataset, prepared[0].config.image_size, cache)
    backbone = build_backbone(BASE.backbone, pretrained=True)
    splits = prepared[0].splits
    shown = np.concatenate([*splits.pools, splits.val])
    started = time.perf_counter()
    computed = outputs(backbone, images[shown], 64, channels_last=True)
    features = np.zeros((len(dataset.labels), computed.shape[1]), np.float32)
    features[shown] = computed
    extracted = time.perf_counter()
    for run in prepared:
        torch.manual_seed(run.config.seed)
        _plain_head(
            torch.from_numpy(features), torch.from_numpy(dataset.labels), run.train_indices, splits.val
        )
    finished = time.perf_counter()
    return finished - started, finished - extracted


def _plain_head(features, labels, train: np.ndarray, val: np.ndarray) -> float:
    """An AdamW linear head, shuffled mini-batches, validation accuracy after each epoch."""
    import torch

    head = torch.nn.Linear(features.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.AdamW(head.parameters(), lr=NAIVE["lr"])
    rows, accuracy = torch.from_numpy(train), 0.0
    for _ in range(NAIVE["epochs"]):
        order = rows[torch.randperm(len(rows))]
        for start in range(0, len(order), NAIVE["batch_size"]):
            batch = order[start : start + NAIVE["batch_size"]]
            loss = torch.nn.functional.cross_entropy(head(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = float((head(features[val]).argmax(1) == labels[val]).float().mean())
    return accuracy


def _against_logistic_regression(cache: Path, slices, seeds, results: list[Result]) -> list[Row]:
    """Holdout accuracy of the engine's head against sklearn's LogisticRegression fitted on the
    same cached features, slices and seeds (:func:`sklearn_head`)."""
    dataset = scan(BASE.data, cache)
    rows = []
    for text in (*slices[:3], slices[-1]):
        ours, theirs = [], []
        for seed in seeds:
            prepared = prepare(dataclasses.replace(BASE, slice=text, seed=seed), cache, dataset=dataset)
            holdout = prepared.splits.holdout
            features = cached_features(
                dataset, prepared.config.backbone, prepared.config.image_size, cache, prepared.config.features
            ).array
            model, scale = sklearn_head(features, dataset.labels, prepared)
            predicted = model.predict(scale(features[holdout]))
            theirs.append(float(np.mean(predicted == dataset.labels[holdout])))
            ours += [
                r.summary.accuracy
                for r in results
                if r.summary.config.slice == text and r.summary.config.seed == seed
            ]
        rows.append(
            Row(
                "accuracy",
                f"head vs logistic regression, {text}",
                float(np.mean(ours)),
                float(np.mean(theirs)),
                "holdout accuracy",
                note=f"mean over seeds {list(seeds)}",
            )
        )
    return rows
