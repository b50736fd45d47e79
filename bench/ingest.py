"""9. Bringing a user's folder in: scanning (every file fully checked) and decoding (resized into the
image cache) a folder of 256 px JPEGs, against reading the same files' bytes. The folder is made
here: noisy photographs-like images, so that JPEG has real work to do."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.measure import Row, timed
from core.data.datasets import scan
from core.data.images import image_array


def make_folder(root: Path, count: int, classes: int = 4, side: int = 256) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = (int(v) for v in rng.integers(0, side - 50, 2))
            draw.ellipse([x, y, x + 50, y + 50], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        noisy = np.asarray(image, dtype=np.int16) + rng.integers(-20, 20, (side, side, 3))
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def run(full: bool) -> list[Row]:
    count = 10_000 if full else 2_000
    with tempfile.TemporaryDirectory(prefix="hmd-ingest-") as scratch:
        root, cache = Path(scratch) / "photos", Path(scratch) / "cache"
        paths = make_folder(root, count)
        _, reading = timed(lambda: sum(len(p.read_bytes()) for p in paths))
        dataset, scanning = timed(lambda: scan(root, cache))
        _, decoding = timed(lambda: image_array(dataset, 224, cache))
    note = (
        f"{count:,} JPEGs of 256 px, files in the OS cache (reading them is memory speed); "
        f"{count / (scanning + decoding):,.0f} images/s in all"
    )
    return [
        Row(
            "ingest",
            "scan (every file decoded) vs reading the bytes",
            scanning,
            reading,
            "s",
            better="lower",
            note=note,
        ),
        Row(
            "ingest",
            "scan and decode into the 224 px cache vs reading the bytes",
            scanning + decoding,
            reading,
            "s",
            better="lower",
            target=3.0,
            note="target from the issue: at most 3x the bytes-read time",
        ),
    ]
