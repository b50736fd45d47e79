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
from core.images import image_array
from core.inference import outputs
from core.paths import cached_npy


def extract(backbone, images: np.ndarray, batch_size: int = 64, show_progress: bool = True) -> np.ndarray:
    """Run ``backbone`` (eval mode, no gradients) over uint8 N x H x W x 3 images."""
    return outputs(
        backbone,
        images,
        batch_size,
        channels_last=True,
        label="extracting features" if show_progress else None,
    )


def cached_features(dataset: Dataset, backbone_name: str, size: int, cache_dir: Path) -> np.ndarray:
    """Pretrained-backbone features of every image of ``dataset``, from the cache or computed once."""
    path = cache_dir / "features" / f"{dataset.fingerprint}-{backbone_name}-{size}.npy"
    return cached_npy(
        path,
        lambda: extract(
            build_backbone(backbone_name, pretrained=True), image_array(dataset, size, cache_dir)
        ),
    )
