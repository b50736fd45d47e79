"""Frozen-backbone features, computed once per (dataset, backbone, image size) and cached.

This is what makes a grid of runs quick on a CPU: with a frozen backbone and no augmentation
the backbone's output never changes, so every run on a dataset trains its head on the same
cached ``cache/features/<fingerprint>-<backbone>-<size>.npy`` (float32, N x F, dataset order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.backbones import build_backbone
from core.datasets import Dataset
from core.device import best_device
from core.images import image_array, to_tensor
from core.paths import save_npy
from core.progress import progress


def extract(backbone, images: np.ndarray, batch_size: int = 64, show_progress: bool = True) -> np.ndarray:
    """Run ``backbone`` (eval mode, no gradients) over uint8 N x H x W x 3 images."""
    import torch

    device = best_device()
    backbone = backbone.eval().to(device, memory_format=torch.channels_last)
    chunks = []
    starts = range(0, len(images), batch_size)
    with torch.inference_mode(), torch.autocast(device.type, enabled=device.type == "cuda"):
        for start in progress(starts, "extracting features", enabled=show_progress, unit="batch"):
            batch = to_tensor(images[start:start + batch_size], device)
            batch = batch.contiguous(memory_format=torch.channels_last)
            chunks.append(backbone(batch).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def cached_features(dataset: Dataset, backbone_name: str, size: int, cache_dir: Path) -> np.ndarray:
    """Pretrained-backbone features of every image of ``dataset``, from the cache or computed once."""
    path = cache_dir / "features" / f"{dataset.fingerprint}-{backbone_name}-{size}.npy"
    if not path.exists():
        images = image_array(dataset, size, cache_dir)
        save_npy(path, extract(build_backbone(backbone_name, pretrained=True), images))
    return np.load(path)
