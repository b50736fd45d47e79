"""Which device to compute on, at what precision, and how many loader processes feed it: the
local CUDA GPU when there is one, else the CPU."""

from __future__ import annotations

import os


def best_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lightning_precision() -> str:
    """Mixed precision on a GPU; full precision on a CPU, where bf16 autocast is slower."""
    import torch

    return "16-mixed" if torch.cuda.is_available() else "32-true"


def loader_workers(aug: str) -> int:
    """Data-loader processes for a training run with augmentation policy ``aug``.

    On a CPU the training itself needs the cores, and cached images with no augmentation cost
    next to nothing to load, so that case gets none. A GPU consumes images far faster than one
    Python process converts them, so there every policy gets workers.
    """
    import torch

    on_gpu = torch.cuda.is_available()
    if aug == "none" and not on_gpu:
        return 0
    return min(8 if on_gpu else 4, max(1, (os.cpu_count() or 2) - 1))


def synchronize(device) -> None:
    """Wait for queued GPU work, so that a clock read afterwards includes it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
