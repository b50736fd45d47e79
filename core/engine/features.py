"""Frozen-backbone features, computed once per (dataset, backbone, image size, backend) and cached.

This is what makes a grid of runs quick on a CPU: with a frozen backbone and no augmentation
the backbone's output never changes, so every run on a dataset trains its head on the same
cached ``cache/features/<fingerprint>-<backbone>-<size>-<backend>.npy`` (float32, N x F,
dataset order). Which engine computes them is :mod:`core.models.feature_backends`'s choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.base.paths import load_npy, save_npy, write_atomic
from core.data.datasets import Dataset
from core.data.images import image_array
from core.models.backbones import build_backbone
from core.models.feature_backends import FALLBACK, default_backend, extract


@dataclass(frozen=True)
class Features:
    """What a model reads for every image (features, or images for a network), and the backend
    that computed features: the one asked for, or the fallback that stood in for it (see
    :func:`core.models.feature_backends.extract`); ``None`` for images."""

    array: np.ndarray
    backend: str | None


def feature_file(cache_dir: Path, dataset: Dataset, backbone_name: str, size: int, backend: str) -> Path:
    return cache_dir / "features" / f"{dataset.fingerprint}-{backbone_name}-{size}-{backend}.npy"


def cached_features(
    dataset: Dataset, backbone_name: str, size: int, cache_dir: Path, backend: str | None = None
) -> Features:
    """Pretrained-backbone features of every image of ``dataset``, from the cache or computed
    once with ``backend`` (default: the machine's, :func:`default_backend`).

    A backend that failed for this backbone and size once (marked by
    ``cache/onnx/<backbone>-<size>-<backend>.failed``) is not tried again: the next one of
    :data:`core.models.feature_backends.FALLBACK` stands in for it.
    """
    onnx_file = cache_dir / "onnx" / f"{backbone_name}-{size}.onnx"

    def failed(backend: str) -> Path:
        return onnx_file.with_name(f"{backbone_name}-{size}-{backend}.failed")

    used = backend or default_backend()
    while used in FALLBACK and failed(used).exists():
        used = FALLBACK[used]
    path = feature_file(cache_dir, dataset, backbone_name, size, used)
    array = load_npy(path)
    if array is None:
        images = image_array(dataset, size, cache_dir)
        array, computed = extract(build_backbone(backbone_name, pretrained=True), images, used, onnx_file)
        while used != computed:
            note = f"{used} failed for {backbone_name} at {size} px\n".encode()
            write_atomic(failed(used), note, derived=True)
            used = FALLBACK[used]
        path = feature_file(cache_dir, dataset, backbone_name, size, computed)
        if save_npy(path, array, derived=True):  # else read-only: the array in memory serves
            array = load_npy(path)
    return Features(array, used)
