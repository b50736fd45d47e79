"""Frozen feature extraction against the arithmetic ceiling of this machine, per backend.

The ceiling is the backbone's FLOPs per image (counted by ``torch.utils.flop_counter``) over
the rate of a large fp32 matrix product on the same cores: no convolutional network runs
faster than its multiply-adds. Every backend extracts the same cached images, side by side.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from bench.measure import Row, best_of
from core.base.device import best_device
from core.base.paths import DEFAULT_DATA
from core.data.datasets import scan
from core.data.images import image_array
from core.models.backbones import build_backbone
from core.models.feature_backends import RUNTIMES, compiled, default_backend, extract, in_batches, threads

BACKBONE = "efficientnet_lite0"


def matmul_flops() -> float:
    """fp32 FLOP/s of a 2048 x 2048 matrix product, the best of a few."""
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    a @ b

    def rate() -> float:
        started = time.perf_counter()
        for _ in range(4):
            a @ b
        return 4 * 2 * 2048**3 / (time.perf_counter() - started)

    return best_of(rate, 3)


def flops_per_image(backbone, size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        backbone.eval()(torch.rand(1, 3, size, size))
    return float(counter.get_total_flops())


def _rates(backbone, images: np.ndarray, backends: list[str]) -> tuple[dict, dict, dict]:
    """Images per second of each backend (best of 2, after a warm-up), its features, and the
    seconds a compiled runtime takes to load (once per dataset extraction; not in its rate)."""
    rates, features, loads = {}, {}, {}
    with tempfile.TemporaryDirectory() as folder:
        onnx_file = Path(folder) / "backbone.onnx"
        for backend in backends:
            if backend in RUNTIMES:
                compiled(backend, backbone, images.shape[1], onnx_file)  # exported here
                started = time.perf_counter()
                run = compiled(backend, backbone, images.shape[1], onnx_file)
                loads[backend] = time.perf_counter() - started
                extract_all = partial(in_batches, run, images)
            else:
                extract_all = partial(lambda b: extract(backbone, images, b, show_progress=False)[0], backend)
            extract_all()  # warm-up

            def rate(backend: str = backend, extract_all=extract_all) -> float:
                started = time.perf_counter()
                features[backend] = extract_all()
                return len(images) / (time.perf_counter() - started)

            rates[backend] = best_of(rate, 2)
    return rates, features, loads


def run(cache: Path, full: bool) -> list[Row]:
    if best_device().type == "cuda":
        return []  # the ceiling here is a CPU's; on a GPU the throughput suite times extraction
    dataset = scan(DEFAULT_DATA, cache)
    backbone = build_backbone(BACKBONE, pretrained=True)
    peak = matmul_flops()
    chosen = default_backend()
    rows = []
    for size, count in ((96, 1536 if full else 768), (224, 512 if full else 192)):
        images = np.ascontiguousarray(image_array(dataset, size, cache)[:count])
        per_image = flops_per_image(backbone, size)
        ceiling = peak / per_image
        backends = list(dict.fromkeys((chosen, *RUNTIMES, "eager-fp32")))
        rates, features, loads = _rates(backbone, images, backends)
        scale = float(np.abs(features["eager-fp32"]).max())
        note = (
            f"{BACKBONE}, {count} images, {threads()} threads; ceiling {ceiling:.0f} img/s = "
            f"{peak / 1e9:.0f} GFLOP/s (2048² fp32 matmul) / {per_image / 1e9:.2f} GFLOP per image"
        )
        for backend in backends:
            error = float(np.abs(features[backend] - features["eager-fp32"]).max()) / scale
            rows.append(
                Row(
                    "features",
                    f"{backend} vs arithmetic ceiling, {size} px",
                    rates[backend],
                    ceiling,
                    "img/s",
                    target=0.5 if backend == chosen else None,
                    note=(note + "; " if backend == chosen else "")
                    + (
                        f"loading took {loads[backend]:.2f} s (once per extraction, not counted); "
                        if backend in loads
                        else ""
                    )
                    + f"largest difference from eager fp32 {error:.1e}",
                )
            )
        error = float(np.abs(features[chosen] - features["eager-fp32"]).max()) / scale
        rows.append(
            Row(
                "features",
                f"{chosen} (the default) vs eager PyTorch, {size} px",
                rates[chosen],
                rates["eager-fp32"],
                "img/s",
                note=f"largest difference {error:.1e} of the largest feature (tolerance 1e-4)",
            )
        )
    return rows
