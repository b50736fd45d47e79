"""2-4 and 7. Training throughput of the Lightning pipeline against a minimal hand-written loop
(same model, data, batch size and precision), the input pipeline against what the model
consumes, and feature extraction against the backbone's forward-only rate."""

from __future__ import annotations

import copy
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset, TensorDataset

from bench.measure import Row, best_of, interleaved, steady_rate
from core.base.device import best_device, loader_workers, synchronize
from core.base.paths import DEFAULT_DATA
from core.data.datasets import scan
from core.data.images import image_array
from core.data.splits import make_splits
from core.engine.training import SliceData, fit, image_data
from core.models.backbones import build_backbone, get_spec
from core.models.classifier import Classifier
from core.models.feature_backends import default_backend, extract
from core.store.record import read_metrics
from core.store.runs import RunFolder

BACKBONE = "efficientnet_lite0"


def _sizes(full: bool) -> tuple[int, int, int]:
    """Image size, batch size and steps of the throughput suites. A GPU gets what people train
    at there (224 px, batch 64): at 96 px and batch 32 it would time Python, not the GPU."""
    if best_device().type == "cuda":
        return 224, 64, 48 if full else 24
    return (96, 32, 16) if full else (64, 16, 16)


def _setup(cache: Path, size: int, batch: int, steps: int, aug: str = "none", workers: int = 0):
    dataset = scan(DEFAULT_DATA, cache)
    images = image_array(dataset, size, cache)
    splits = make_splits(dataset.labels, dataset.classes)
    train = np.concatenate(splits.pools)[: batch * steps]
    data = image_data(images, dataset.labels, train, splits.val[:batch], aug, batch, seed=0, workers=workers)
    return dataset, images, data


def _model(num_classes: int, n_train: int) -> Classifier:
    torch.manual_seed(0)
    backbone = build_backbone(BACKBONE, pretrained=True)
    return Classifier(
        backbone, get_spec(BACKBONE).num_features, num_classes, lr=1e-3, mode="scratch", n_train=n_train
    )


def _ours_rate(model: Classifier, data, batch: int) -> float:
    """Images per second of ``core.engine.training.fit`` over one epoch, from its own step timestamps."""
    with tempfile.TemporaryDirectory() as folder:
        run = RunFolder(Path(folder))
        fit(model, data, epochs=1, folder=run, backbone_name=BACKBONE, cancel_file=run.path / "cancel")
        stamps = read_metrics(run.metrics).steps["t"].tolist()
    return steady_rate(stamps, batch)


def _plain_rate(model: Classifier, data, batch: int) -> float:
    """Images per second of a minimal PyTorch loop over the same loader and model. Like
    ``fit`` it reads no value back each step, and it is timed the same way, by the CPU's step
    timestamps (on a GPU the CPU runs at most a step or so ahead; both sides alike)."""
    device = best_device()
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4
    )
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
    stamps = []
    for images, labels in data.train_dataloader():
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        stamps.append(time.monotonic())
    return steady_rate(stamps, batch)


def finetune(cache: Path, full: bool) -> tuple[list[Row], float]:
    """Returns the rows and the plain loop's images per second (what the model consumes)."""
    (size, batch, steps), rounds = _sizes(full), 5
    dataset, _, data = _setup(cache, size, batch, steps, workers=loader_workers("none"))
    start = _model(len(dataset.classes), batch * steps)
    ours, plain = interleaved(
        lambda: _ours_rate(copy.deepcopy(start), data, batch),
        lambda: _plain_rate(copy.deepcopy(start), data, batch),
        rounds,
    )
    device = best_device().type
    note = (
        f"{BACKBONE}, all layers trained, {size} px, batch {batch}, {steps} steps, "
        f"{'fp16 mixed' if device == 'cuda' else 'fp32'} on {device}; "
        f"median of {rounds} interleaved rounds"
    )
    rows = [
        Row(
            "fine-tune",
            f"Lightning pipeline vs plain loop ({device})",
            ours,
            plain,
            "img/s",
            target=0.9,
            note=note,
        )
    ]
    if device == "cuda":
        rows.append(_gpu_busy(start, data, batch))
    return [*rows, _step_cost(batch, 300 if full else 150, rounds)], plain


def _step_cost(batch: int, steps: int, rounds: int) -> Row:
    """Time per step of a linear head on random features, through ``fit`` and through the
    plain loop: what Lightning and the metrics writer add to every step, whatever the model.
    A CPU step of a real backbone hides it; a fast GPU step may not."""
    width, classes = 256, 10
    generator = np.random.default_rng(0)
    features = generator.random((batch * steps, width), dtype=np.float32)
    labels = generator.integers(0, classes, batch * steps)
    rows = TensorDataset(torch.from_numpy(features), torch.from_numpy(labels))
    data = SliceData(rows, Subset(rows, range(batch)), batch, seed=0)
    torch.manual_seed(0)
    head = Classifier(None, width, classes, lr=1e-3, mode="frozen", n_train=batch * steps)
    ours, plain = interleaved(
        lambda: _ours_rate(copy.deepcopy(head), data, batch),
        lambda: _plain_rate(copy.deepcopy(head), data, batch),
        rounds,
    )
    return Row(
        "fine-tune",
        "fixed cost per step, Lightning vs plain loop",
        1e3 * batch / ours,
        1e3 * batch / plain,
        "ms/step",
        better="lower",
        note=f"linear head on random features, batch {batch}, {steps} steps; "
        f"median of {rounds} interleaved rounds",
    )


def _gpu_busy(model: Classifier, data, batch: int) -> Row:
    """Share of the time the GPU is busy while ``fit`` trains, from a profiled run."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        _ours_rate(copy.deepcopy(model), data, batch)
    events = list(profiler.events())
    start, end = training_window(events)
    kernels = [k for k in device_intervals(events, DeviceType.CUDA) if start <= k[0] <= end]
    note = (
        "union of CUDA kernel intervals / first kernel start to last kernel end, over the "
        "kernels launched from the 3rd to the last optimizer step (torch.profiler, which "
        "itself slows the host side)"
        if kernels
        else "not measured: the profiler recorded no CUDA kernels (is CUPTI missing?)"
    )
    return Row(
        "gpu",
        "GPU busy share during fit",
        busy_share(kernels) if kernels else float("nan"),
        None,
        "share of time",
        note=note,
    )


def training_window(events, warmup: int = 2) -> tuple[float, float]:
    """Profiler time from the start of the first optimizer step after ``warmup`` to the end of
    the last one: the steady part of a fit, without moving the weights, warming up, validating
    or copying back. torch.optim marks each step with an ``Optimizer.step#...`` range."""
    steps = sorted(
        (e.time_range.start, e.time_range.end) for e in events if e.name.startswith("Optimizer.step#")
    )
    if len(steps) <= warmup:
        raise ValueError(f"only {len(steps)} optimizer steps were profiled")
    return steps[warmup][0], steps[-1][1]


def device_intervals(events, device_type) -> list[tuple[float, float]]:
    """(start, end) of the profiled events that ran on ``device_type``. User annotations
    (``record_function`` ranges, which Lightning adds around every step) are left out: they
    span the work inside them, which is already counted."""
    return [
        (e.time_range.start, e.time_range.end)
        for e in events
        if e.device_type == device_type and not e.is_user_annotation
    ]


def busy_share(intervals: list[tuple[float, float]]) -> float:
    """Share of the span from the earliest start to the latest end that lies inside at least
    one interval (kernels on several streams overlap: each moment counts once)."""
    if not intervals:
        return 0.0
    ordered = sorted(intervals)
    covered, (start, end) = 0.0, ordered[0]
    for next_start, next_end in ordered[1:]:
        if next_start > end:
            covered += end - start
            start, end = next_start, next_end
        else:
            end = max(end, next_end)
    covered += end - start
    span = max(e for _, e in ordered) - ordered[0][0]
    return covered / span if span else 1.0


def loader(cache: Path, full: bool, model_rate: float) -> list[Row]:
    """Images per second the training loader delivers (with augmentation) against the plain
    loop's consumption measured above."""
    size, batch, steps = _sizes(full)
    rows = []
    for aug in ("none", "light", "heavy"):
        workers = loader_workers(aug)
        _, _, data = _setup(cache, size, batch, steps * 2, aug, workers)
        rate = best_of(partial(_loader_rate, data, batch), 2)
        where = f"{workers} loader process(es)" if workers else "main process"
        pinned = ", pinned memory" if best_device().type == "cuda" else ""
        rows.append(
            Row(
                "input",
                f"loader vs model, aug {aug}",
                rate,
                model_rate,
                "img/s",
                target=1.0,
                note=f"the loader must outpace training ({where}{pinned}, as in a run)",
            )
        )
    return rows


def _loader_rate(data, batch: int) -> float:
    stamps = [time.monotonic() for _ in data.train_dataloader()]
    return steady_rate(stamps, batch)


def features(cache: Path, full: bool) -> list[Row]:
    """On a GPU, feature extraction over cached images against forward-only on random tensors
    (on a CPU, :mod:`bench.features` measures it against the arithmetic ceiling)."""
    if best_device().type != "cuda":
        return []
    count, size, batch = 4096, 224, 256
    dataset = scan(DEFAULT_DATA, cache)
    images = np.ascontiguousarray(image_array(dataset, size, cache)[:count])
    backbone = build_backbone(BACKBONE, pretrained=True)
    backend = default_backend()
    extract(backbone, images[:batch], backend, show_progress=False)  # warm-up

    def ours() -> float:
        started = time.perf_counter()
        extract(backbone, images, backend, show_progress=False)
        return count / (time.perf_counter() - started)

    def ceiling() -> float:
        device = best_device()
        model = backbone.eval().to(device, memory_format=torch.channels_last)
        noise = torch.rand(batch, 3, size, size, device=device)
        noise = noise.contiguous(memory_format=torch.channels_last)
        started = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, enabled=device.type == "cuda"):
            for _ in range(count // batch):
                model(noise)
        synchronize(device)
        return count // batch * batch / (time.perf_counter() - started)

    return [
        Row(
            "features",
            "extraction vs forward-only",
            best_of(ours, 2),
            best_of(ceiling, 2),
            "img/s",
            target=0.8,
            note=f"{count} images, {size} px, batch {batch}",
        )
    ]
