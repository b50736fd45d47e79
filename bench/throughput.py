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

from bench.measure import Row, best_of, interleaved, steady_rate
from core import runs
from core.backbones import build_backbone, get_spec
from core.datasets import scan
from core.device import best_device
from core.features import extract
from core.images import image_array
from core.paths import DEFAULT_DATA
from core.splits import make_splits
from core.train import Classifier, fit, image_data

BACKBONE = "efficientnet_lite0"


def _setup(cache: Path, size: int, batch: int, steps: int, aug: str = "none"):
    dataset = scan(DEFAULT_DATA, cache)
    images = image_array(dataset, size, cache)
    splits = make_splits(dataset.labels, dataset.classes)
    train = np.concatenate(splits.pools)[: batch * steps]
    data = image_data(images, dataset.labels, train, splits.val[:batch], aug, batch, seed=0, workers=0)
    return dataset, images, data


def _model(num_classes: int, n_train: int) -> Classifier:
    torch.manual_seed(0)
    backbone = build_backbone(BACKBONE, pretrained=True)
    return Classifier(backbone, get_spec(BACKBONE).num_features, num_classes, lr=1e-3,
                      mode="scratch", n_train=n_train)


def _ours_rate(model: Classifier, data, batch: int) -> float:
    """Images per second of ``core.train.fit`` over one epoch, from its own step timestamps."""
    with tempfile.TemporaryDirectory() as folder:
        fit(model, data, epochs=1, run_dir=Path(folder), backbone_name=BACKBONE,
            cancel_file=Path(folder) / "cancel")
        stamps = [r["t"] for r in runs.load_metrics(Path(folder)).to_dict("records")
                  if r["kind"] == "step"]
    return steady_rate(stamps, batch)


def _plain_rate(model: Classifier, data, batch: int) -> float:
    """Images per second of a minimal PyTorch loop over the same loader and model."""
    device = best_device()
    model = model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                                  weight_decay=1e-4)
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
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.monotonic())
    return steady_rate(stamps, batch)


def finetune(cache: Path, full: bool) -> tuple[list[Row], float]:
    """Returns the rows and the plain loop's images per second (what the model consumes)."""
    size, batch, steps, rounds = (96, 32, 16, 5) if full else (64, 16, 16, 5)
    dataset, _, data = _setup(cache, size, batch, steps)
    start = _model(len(dataset.classes), batch * steps)
    ours, plain = interleaved(lambda: _ours_rate(copy.deepcopy(start), data, batch),
                              lambda: _plain_rate(copy.deepcopy(start), data, batch), rounds)
    device = best_device().type
    note = (f"{BACKBONE}, all layers trained, {size} px, batch {batch}, {steps} steps, "
            f"{'fp16 mixed' if device == 'cuda' else 'fp32'} on {device}; "
            f"median of {rounds} interleaved rounds")
    rows = [Row("fine-tune", f"Lightning pipeline vs plain loop ({device})", ours, plain, "img/s",
                target=0.9, note=note)]
    if device == "cuda":
        rows.append(_gpu_busy(start, data, batch))
    return rows, plain


def _gpu_busy(model: Classifier, data, batch: int) -> Row:
    """Share of wall time with CUDA kernels running, over a profiled run of ``fit``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        started = time.perf_counter()
        _ours_rate(copy.deepcopy(model), data, batch)
        wall = time.perf_counter() - started
    busy = sum(e.self_device_time_total for e in profiler.key_averages()) / 1e6
    return Row("gpu", "GPU busy share during fit", busy / wall, None, "share of wall time",
               note="CUDA kernel time / wall time (torch.profiler)")


def loader(cache: Path, full: bool, model_rate: float) -> list[Row]:
    """Images per second the training loader delivers (with augmentation) against the plain
    loop's consumption measured above."""
    size, batch, steps = (96, 32, 12) if full else (64, 16, 10)
    rows = []
    for aug in ("none", "light", "heavy"):
        _, _, data = _setup(cache, size, batch, steps * 4, aug)
        rate = best_of(partial(_loader_rate, data, batch), 2)
        rows.append(Row("input", f"loader vs model, aug {aug}", rate, model_rate,
                        "img/s", target=1.0,
                        note="the loader must outpace training (main process, no workers)"))
    return rows


def _loader_rate(data, batch: int) -> float:
    stamps = [time.monotonic() for _ in data.train_dataloader()]
    return steady_rate(stamps, batch)


def features(cache: Path, full: bool) -> list[Row]:
    """core.features.extract over cached images against forward-only on random tensors."""
    count, size, batch = (1024, 96, 64) if full else (384, 96, 64)
    dataset = scan(DEFAULT_DATA, cache)
    images = np.ascontiguousarray(image_array(dataset, size, cache)[:count])
    backbone = build_backbone(BACKBONE, pretrained=True)
    extract(backbone, images[:batch], show_progress=False)  # warm-up

    def ours() -> float:
        started = time.perf_counter()
        extract(backbone, images, batch_size=batch, show_progress=False)
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
        return count // batch * batch / (time.perf_counter() - started)

    return [Row("features", "extraction vs forward-only", best_of(ours, 2), best_of(ceiling, 2),
                "img/s", target=0.8, note=f"{count} images, {size} px, batch {batch}")]
