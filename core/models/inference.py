"""A model over many inputs, batch by batch, on the best device, without gradients.

Used for frozen features (:mod:`core.engine.features`), holdout probabilities (:mod:`core.engine.pipeline`)
and scoring another folder; inputs are cached uint8 images (N x H x W x 3) or feature rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from core.base.device import best_device
from core.base.progress import progress
from core.data.images import scaled

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
    tested, on a CPU), never when False. ``label`` shows a progress bar on a terminal. The
    outputs stay on the device until the last batch: copying each back would wait for it.
    """
    import torch

    device = best_device()
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    starts = range(0, len(inputs), batch_size)
    fp16 = device.type == "cuda" if half is None else half
    chunks = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=fp16):
        for batch in on_device(
            inputs,
            progress(starts, label, unit=f"batch of {batch_size}") if label else starts,
            batch_size,
            device,
        ):
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            chunks.append(model(batch).float())
    return torch.cat(chunks).cpu().numpy() if chunks else np.zeros((0, 0), np.float32)


def on_device(inputs: np.ndarray, starts: Iterable[int], batch_size: int, device) -> Iterator:
    """Each batch of ``inputs`` from ``starts`` on ``device``: uint8 images as 0..1 floats
    (:func:`core.data.images.scaled`), feature rows as they are.

    Each batch is copied into one of two staging buffers first (the cache is read-only and
    memory-mapped). On a GPU they are pinned and sent without waiting, so the host copies the
    next batch while the GPU computes this one; a buffer is refilled only once its last copy
    has left (a CUDA event). On a CPU the same steps run with plain buffers.
    """
    import torch

    pinned = device.type == "cuda"
    dtype = torch.from_numpy(np.empty(0, inputs.dtype)).dtype  # (the cache itself is read-only)
    staging = [torch.empty((batch_size, *inputs.shape[1:]), dtype=dtype, pin_memory=pinned) for _ in range(2)]
    sent: list = [None, None]  # the CUDA event after each buffer's last copy
    for i, start in enumerate(starts):
        chunk, slot = inputs[start : start + batch_size], i % 2
        if sent[slot] is not None:
            sent[slot].synchronize()
        host = staging[slot][: len(chunk)]
        host.numpy()[...] = chunk
        batch = host.to(device, non_blocking=pinned, copy=True)  # never the buffer itself
        if pinned:
            sent[slot] = torch.cuda.Event()
            sent[slot].record()
        yield scaled(batch) if inputs.dtype == np.uint8 else batch


def predict_probs(model, inputs: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """Class probabilities of a classifier over images or feature rows (N x C)."""
    import torch

    logits = outputs(model, inputs, batch_size)
    return torch.from_numpy(logits).softmax(1).numpy()
