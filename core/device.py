"""Which device to compute on: the local CUDA GPU when there is one, else the CPU."""

from __future__ import annotations


def best_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lightning_precision() -> str:
    """Mixed precision on a GPU; full precision on a CPU, where bf16 autocast is slower."""
    import torch

    return "16-mixed" if torch.cuda.is_available() else "32-true"
