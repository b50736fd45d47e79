"""5. Grad-CAM: seconds per 32 holdout images for each method, batched, against one forward
plus backward pass of the same 32 images through the same model."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

from bench.measure import Row, timed
from core.answers.cam import METHODS, overlays
from core.base.device import best_device, synchronize
from core.data.images import to_tensor
from core.store import runs

IMAGES = 32


def run(cache: Path, rid: str, full: bool) -> list[Row]:
    run = runs.load(cache, rid)
    holdout = run.predictions().image_index.tolist()[:IMAGES]
    pixels = run.images()[holdout]
    baseline = _forward_backward(run, pixels)
    rows = []
    for method in METHODS:
        count = IMAGES if full or method != "scorecam" else 4  # scorecam: a pass per channel
        shutil.rmtree(cache / "cams" / rid / method, ignore_errors=True)
        _, seconds = timed(partial(overlays, cache, rid, [(i, 0) for i in holdout[:count]], method))
        per_batch = seconds * IMAGES / count
        note = "" if count == IMAGES else f"timed on {count} images, scaled to {IMAGES}"
        rows.append(
            Row(
                "grad-cam",
                f"{method} per {IMAGES} images vs forward+backward",
                per_batch,
                baseline,
                "s",
                better="lower",
                note=note,
            )
        )
    return rows


def _forward_backward(run: runs.Run, pixels) -> float:
    """On the device the CAMs are computed on, like :func:`core.answers.cam.overlays`."""
    device = best_device()
    model = run.model().to(device)
    model.requires_grad_(True)
    batch = to_tensor(pixels, device)
    model(batch).sum().backward()  # warm-up

    def once() -> None:
        model.zero_grad()
        model(batch)[:, 0].sum().backward()
        synchronize(device)

    return min(timed(once)[1] for _ in range(3))
