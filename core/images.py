"""Decode each image once: RGB, resized and centre-cropped to a square, cached as one array.

The cache is ``cache/images/<fingerprint>-<size>.npy`` (uint8, N x S x S x 3, in dataset order),
memory-mapped on read, so training, feature extraction, evaluation and the CAM overlays all see
the same pixels and no JPEG is decoded twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from core.datasets import Dataset, load_rgb
from core.paths import save_npy
from core.progress import progress


def square(image: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and crop the centre square; uint8 H x W x 3."""
    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize((max(size, round(width * scale)), max(size, round(height * scale))),
                           Image.Resampling.BICUBIC, reducing_gap=3.0)
    left = (resized.width - size) // 2
    top = (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def decode_all(paths: list[Path], size: int, show_progress: bool = True) -> np.ndarray:
    """Decode and square every file (threads: PIL releases the GIL while decoding)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def work(i: int) -> int:
        out[i] = square(load_rgb(paths[i]), size)
        return i

    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in progress(pool.map(work, range(len(paths))), "decoding images",
                          total=len(paths), enabled=show_progress, unit="img"):
            pass
    return out


def _array_path(fingerprint: str, size: int, cache_dir: Path) -> Path:
    return cache_dir / "images" / f"{fingerprint}-{size}.npy"


def cached_array(fingerprint: str, size: int, cache_dir: Path) -> np.ndarray | None:
    """A dataset's cached images by fingerprint (the folder itself may be gone), or ``None``."""
    path = _array_path(fingerprint, size, cache_dir)
    return np.load(path, mmap_mode="r") if path.exists() else None


def image_array(dataset: Dataset, size: int, cache_dir: Path) -> np.ndarray:
    """All of the dataset's images at ``size`` pixels, from the cache or decoded once."""
    path = _array_path(dataset.fingerprint, size, cache_dir)
    if not path.exists():
        array = decode_all([dataset.root / p for p in dataset.paths], size)
        save_npy(path, array)
    return np.load(path, mmap_mode="r")



def to_tensor(images: np.ndarray, device=None):
    """uint8 N x H x W x 3 (a slice of the cache) -> float N x 3 x H x W in 0..1 on ``device``."""
    import torch

    batch = torch.from_numpy(np.array(images)).to(device)  # a copy: the cache is read-only
    return batch.permute(0, 3, 1, 2).float().div_(255)
