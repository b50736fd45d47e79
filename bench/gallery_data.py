"""Write the gallery's datasets under one folder: Fashion-MNIST's 60,000 training images as class
folders (``data/make_fashion_mnist.py --per-class 6000``, from Debian's ``dataset-fashion-mnist``)
and two class subsets of it as hard links: the four look-alike tops at 3,000 per class, and five
easy classes at 1,500 per class.

``python -m bench.gallery_data OUT``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from core.base.paths import PROJECT_ROOT

SUBSETS = {
    "fm-hard4": (("Shirt", "T-shirt_top", "Pullover", "Coat"), 3000),
    "fm-easy5": (("Trouser", "Bag", "Sneaker", "Sandal", "Ankle_boot"), 1500),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gallery_data", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    full = out / "fm60k"
    if not full.is_dir():
        script = PROJECT_ROOT / "data" / "make_fashion_mnist.py"
        subprocess.run([sys.executable, str(script), "--per-class", "6000", "--out", str(full)], check=True)
    for name, (classes, per_class) in SUBSETS.items():
        for label in classes:
            folder = out / name / label
            folder.mkdir(parents=True, exist_ok=True)
            for image in sorted((full / label).iterdir())[:per_class]:
                if not (folder / image.name).exists():
                    os.link(image, folder / image.name)
    print(" ".join(str(out / name) for name in ("fm60k", *SUBSETS)))


if __name__ == "__main__":
    main()
