"""Decode each image once: RGB, resized and centre-cropped to a square, cached as one array.

The cache is ``cache/images/<fingerprint>-<size>.npy`` (uint8, N x S x S x 3, in dataset order),
memory-mapped on read, so training, feature extraction, evaluation and the CAM overlays all see
the same pixels and no JPEG is decoded twice. It is decoded straight into the file, so a dataset
larger than memory is fine as long as the disk has room (checked before decoding starts).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from core.base.paths import check_space, load_npy, read_only_reason, write_atomic
from core.base.progress import progress
from core.data.datasets import Dataset, load_rgb


def square(image: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and crop the centre square; uint8 H x W x 3."""
    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))),
        Image.Resampling.BICUBIC,
        reducing_gap=3.0,
    )
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def decode_all(paths: list[Path], size: int, out: np.ndarray, show_progress: bool = True) -> None:
    """Decode and square every file into ``out`` (threads: PIL releases the GIL while decoding)."""

    def work(i: int) -> int:
        out[i] = square(load_rgb(paths[i]), size)
        return i

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in progress(
            pool.map(work, range(len(paths))),
            "decoding images",
            total=len(paths),
            enabled=show_progress,
            unit="img",
        ):
            pass


def _array_path(fingerprint: str, size: int, cache_dir: Path) -> Path:
    return cache_dir / "images" / f"{fingerprint}-{size}.npy"


def cached_array(fingerprint: str, size: int, cache_dir: Path) -> np.ndarray | None:
    """A dataset's cached images by fingerprint (the folder itself may be gone), or ``None``."""
    return load_npy(_array_path(fingerprint, size, cache_dir))


def image_array(dataset: Dataset, size: int, cache_dir: Path) -> np.ndarray:
    """All of the dataset's images at ``size`` pixels, from the cache or decoded once.

    Raises:
        DiskFull: the array would not fit on the disk (said before decoding starts).
    """
    path = _array_path(dataset.fingerprint, size, cache_dir)
    array = load_npy(path)
    if array is not None:
        return array
    shape = (len(dataset), size, size, 3)
    if read_only_reason() is not None:  # a derived cache: decoded in memory for a read-only page
        out = np.empty(shape, dtype=np.uint8)
        decode_all([dataset.root / p for p in dataset.paths], size, out)
        return out
    needed = int(np.prod(shape))
    check_space(path.parent, needed + (1 << 20))

    def fill(handle) -> None:
        out = np.lib.format.open_memmap(handle.name, mode="w+", dtype=np.uint8, shape=shape)
        decode_all([dataset.root / p for p in dataset.paths], size, out)
        out.flush()

    write_atomic(path, fill, needed=needed)
    return load_npy(path)


def to_tensor(images: np.ndarray, device=None):
    """uint8 N x H x W x 3 (a slice of the cache) -> float N x 3 x H x W in 0..1 on ``device``."""
    import torch

    return scaled(torch.from_numpy(np.array(images)).to(device))  # a copy: the cache is read-only


def scaled(batch):
    """A uint8 N x H x W x 3 tensor -> float N x 3 x H x W in 0..1, on the tensor's device (sent
    there as uint8: a quarter of the bytes of floats)."""
    return batch.permute(0, 3, 1, 2).float().div_(255)
