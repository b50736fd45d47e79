"""Write the bundled default dataset: a class-folder sample of Fashion-MNIST as PNG files.

Reads the original IDX files that Debian's package ``dataset-fashion-mnist`` installs
(``apt-get install dataset-fashion-mnist``) and writes ``PER_CLASS`` images of each class,
drawn from the 60,000 training images with a fixed seed, to ``data/fashion-mnist/<class>/``.

    python data/make_fashion_mnist.py [--source DIR] [--per-class N] [--out DIR]
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
]


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file: magic (its 4th byte is the rank), big-endian uint32 sizes, uint8 data."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rank = raw[3]
    shape = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "fashion-mnist")
    args = parser.parse_args()

    images = read_idx(args.source / "train-images-idx3-ubyte.gz")
    labels = read_idx(args.source / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        chosen = rng.choice(np.flatnonzero(labels == label), size=args.per_class, replace=False)
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in sorted(chosen):
            Image.fromarray(images[index]).save(folder / f"{index:05d}.png", optimize=True)
    print(f"wrote {args.per_class} images x {len(CLASSES)} classes to {args.out}")


if __name__ == "__main__":
    main()
