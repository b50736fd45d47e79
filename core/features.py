"""Frozen-backbone features, computed once per (dataset, backbone, image size, backend) and cached.

This is what makes a grid of runs quick on a CPU: with a frozen backbone and no augmentation
the backbone's output never changes, so every run on a dataset trains its head on the same
cached ``cache/features/<fingerprint>-<backbone>-<size>-<backend>.npy`` (float32, N x F,
dataset order). Which engine computes them is :mod:`core.feature_backends`'s choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.backbones import build_backbone
from core.datasets import Dataset
from core.feature_backends import default_backend, extract
from core.images import image_array
from core.paths import load_npy, save_npy, write_atomic


@dataclass(frozen=True)
class Features:
    """What a model reads for every image (features, or images for a network), and the backend
    that computed features: the one asked for, or eager fp32 when that one failed (see
    :func:`core.feature_backends.extract`); ``None`` for images."""

    array: np.ndarray
    backend: str | None


def feature_file(cache_dir: Path, dataset: Dataset, backbone_name: str, size: int, backend: str) -> Path:
    return cache_dir / "features" / f"{dataset.fingerprint}-{backbone_name}-{size}-{backend}.npy"


def cached_features(
    dataset: Dataset, backbone_name: str, size: int, cache_dir: Path, backend: str | None = None
) -> Features:
    """Pretrained-backbone features of every image of ``dataset``, from the cache or computed
    once with ``backend`` (default: the machine's, :func:`default_backend`).

    A backend that failed for this backbone and size once (its reason is kept in
    ``cache/onnx/<backbone>-<size>.failed``) is not tried again: eager fp32 stands in for it.
    """
    wanted = backend or default_backend()
    onnx_file = cache_dir / "onnx" / f"{backbone_name}-{size}.onnx"
    failed = onnx_file.with_suffix(".failed")
    used = "eager-fp32" if wanted == "onnxruntime-fp32" and failed.exists() else wanted
    path = feature_file(cache_dir, dataset, backbone_name, size, used)
    array = load_npy(path)
    if array is None:
        images = image_array(dataset, size, cache_dir)
        array, computed = extract(build_backbone(backbone_name, pretrained=True), images, used, onnx_file)
        if computed != used:
            write_atomic(failed, f"ONNX Runtime failed for {backbone_name} at {size} px\n".encode())
            path = feature_file(cache_dir, dataset, backbone_name, size, computed)
        save_npy(path, array)
        array, used = load_npy(path), computed
    return Features(array, used)
