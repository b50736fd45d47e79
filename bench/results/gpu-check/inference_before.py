# core/models/inference.py as it was at 129f7a1, before the staging buffers: loaded by feature_batches.py
# for the side-by-side measurement (bench/results/gpu-check/README.md); not part of the product.
"""A model over many inputs, batch by batch, on the best device, without gradients.

Used for frozen features (:mod:`core.engine.features`), holdout probabilities (:mod:`core.engine.pipeline`)
and scoring another folder; inputs are cached uint8 images (N x H x W x 3) or feature rows.
"""

from __future__ import annotations

import numpy as np

from core.base.device import best_device
from core.base.progress import progress
from core.data.images import to_tensor

BATCH = 128


def outputs(
    model,
    inputs: np.ndarray,
    batch_size: int = BATCH,
    channels_last: bool = False,
    label: str | None = None,
    half: bool | None = None,
) -> np.ndarray:
    """``model`` (put in eval mode on the best device) over ``inputs``, as float32 rows.

    ``channels_last`` suits convolutional backbones on images. ``half``: fp16 mixed precision
    on a GPU when ``None``, on any device when True (so that a GPU's path also runs, and is
    tested, on a CPU), never when False. ``label`` shows a progress bar on a terminal.
    """
    import torch

    device = best_device()
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    chunks = []
    starts = range(0, len(inputs), batch_size)
    fp16 = device.type == "cuda" if half is None else half
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=fp16):
        for start in progress(starts, label, unit=f"batch of {batch_size}") if label else starts:
            chunk = inputs[start : start + batch_size]
            batch = (
                to_tensor(chunk, device)
                if chunk.dtype == np.uint8
                else torch.from_numpy(np.ascontiguousarray(chunk)).to(device)
            )
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            chunks.append(model(batch).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def predict_probs(model, inputs: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """Class probabilities of a classifier over images or feature rows (N x C)."""
    import torch

    logits = outputs(model, inputs, batch_size)
    return torch.from_numpy(logits).softmax(1).numpy()
