"""Class-folder datasets: scanning, checking every file once, converting to RGB, fingerprinting.

A dataset is a folder of class sub-folders of images (the ImageFolder layout). Every file is
opened and fully decoded once; the verdict is cached under ``cache/datasets/`` keyed by the
file's size and modification time, so a rescan of an unchanged folder reads no image.
The fingerprint hashes file contents, not names or times, so a copied or re-cloned dataset
keeps its cached features and runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.base.errors import UserError
from core.base.paths import read_json, write_json
from core.base.progress import progress as progress_bar
from core.base.words import counted

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
SCAN_VERSION = 2  # 2: reasons for unreadable files in words
UNLABELLED = "unlabelled"  # the one class of a folder of unlabelled images (scan_unlabelled)
MAX_PIXELS_VARIABLE = "HMD_MAX_PIXELS"
# PIL refuses images over twice this and warns above it; here anything above it is unreadable,
# said by the check (PIL's own warning, which would name no file, is silenced)
Image.MAX_IMAGE_PIXELS = int(os.environ.get(MAX_PIXELS_VARIABLE, Image.MAX_IMAGE_PIXELS))
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Dataset:
    """The readable images of a class-folder dataset, sorted by class then path."""

    root: Path
    classes: tuple[str, ...]
    paths: tuple[str, ...]  # relative to root
    labels: np.ndarray = field(repr=False)
    unreadable: tuple[tuple[str, str], ...]  # (relative path, reason)
    fingerprint: str
    median_side: int

    def counts(self) -> dict[str, int]:
        """Readable images per class, in class order."""
        per_class = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, per_class, strict=True)}

    def __len__(self) -> int:
        return len(self.paths)


def _walk(root: Path, class_dir: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files below ``class_dir`` (following links to folders, each folder once), and the
    links that lead nowhere or back into a folder already walked, with the reason."""
    files, skipped, seen = [], [], set()
    for folder, dirs, names in os.walk(class_dir, followlinks=True):
        here = Path(folder)
        key = (os.stat(here).st_dev, os.stat(here).st_ino)
        if key in seen:
            skipped.append(
                (
                    here.relative_to(root).as_posix(),
                    "link loop: this folder is already part of the dataset (skipped)",
                )
            )
            dirs.clear()
            continue
        seen.add(key)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if path.is_file():
                files.append(path)
            elif path.is_symlink():
                skipped.append((path.relative_to(root).as_posix(), "broken link: its target is missing"))
    return files, skipped


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: EXIF orientation applied, alpha composited on white,
    16-bit and float greyscale scaled down, palette and CMYK converted."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def load_rgb(path: Path) -> Image.Image:
    """Decode one image file to RGB (see :func:`to_rgb`)."""
    with Image.open(path) as image:
        image.load()
        return to_rgb(image)


def _check(path: Path) -> dict:
    """Open and fully decode one file; return its content hash and size, or why it failed."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > Image.MAX_IMAGE_PIXELS:  # refused before decoding, not after
                raise Image.DecompressionBombWarning(f"Image size ({width * height} pixels) exceeds limit")
            # a JPEG is checked at an eighth of its size: every byte of it is still decoded (a cut
            # or damaged file fails just the same), at a fraction of the cost
            image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except Exception as error:  # PIL raises many types for bad files; all mean "unreadable"
        return {"ok": False, "reason": unreadable_reason(error)}
    return {"ok": True, "sha": hashlib.blake2b(data, digest_size=16).hexdigest(), "w": width, "h": height}


def unreadable_reason(error: Exception) -> str:
    """Why a file cannot be used, in words a person can act on."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, Image.DecompressionBombWarning | Image.DecompressionBombError):
        pixels = re.search(r"\((\d+) pixels\)", text)
        size = f"{int(pixels.group(1)) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        return (
            f"too large to decode safely ({size}; the limit is {Image.MAX_IMAGE_PIXELS / 1e6:.0f}; "
            f"set {MAX_PIXELS_VARIABLE} to allow more)"
        )
    if isinstance(error, UnidentifiedImageError):
        return "not an image this tool can read (unknown format, or a damaged header)"
    if isinstance(error, PermissionError):
        return "permission denied: the file cannot be read"
    if "truncated" in text:
        return "truncated: the file ends before the image does"
    return f"damaged image data ({text})"


def _scan_cache_file(root: Path, cache_dir: Path, kind: str = "") -> Path:
    key = hashlib.blake2b(f"{kind}{root}".encode(), digest_size=8).hexdigest()
    return cache_dir / "datasets" / f"{key}.json"


def _existing_folder(root: str | Path, what: str) -> Path:
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise UserError(f"{what} folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"{what} path is not a folder: {root}")
    return root


def scan(root: str | Path, cache_dir: Path, progress: bool = False) -> Dataset:
    """Scan a class-folder dataset, checking each new or changed file once.

    Raises:
        UserError: the folder does not exist, is not a folder, or has fewer than 2 classes.
    """
    root = _existing_folder(root, "data")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise UserError(
            f"{root} has {counted(len(class_dirs), 'class folder')}; a dataset needs at least 2 "
            "sub-folders of images, one per class"
        )
    folders = [(d.name, d) for d in class_dirs]
    return _scan_folders(root, folders, _scan_cache_file(root, cache_dir), progress)


def scan_unlabelled(root: str | Path, cache_dir: Path, progress: bool = False) -> Dataset:
    """Scan a folder of unlabelled images in any layout (every image below it, however deep),
    checked and cached as a dataset's are. It is a :class:`Dataset` of one class,
    :data:`UNLABELLED`, so that its images and features are decoded, computed and cached by the
    same code, keyed by its content. Its scan record is kept apart from a dataset scan of the
    same folder (the labels differ).

    Raises:
        UserError: the folder does not exist or is not a folder.
    """
    root = _existing_folder(root, "pool")
    cache_file = _scan_cache_file(root, cache_dir, "unlabelled:")
    return _scan_folders(root, [(UNLABELLED, root)], cache_file, progress)


def _scan_folders(root: Path, folders: list[tuple[str, Path]], cache_file: Path, progress: bool) -> Dataset:
    """Check the images below each (class name, folder) of ``folders``, each new or changed file
    once; the verdicts are kept in ``cache_file``."""
    cached = read_json(cache_file) if cache_file.exists() else {}
    old = cached.get("files", {}) if cached.get("version") == SCAN_VERSION else {}
    files: dict[str, dict] = {}
    todo, skipped = [], []
    for label, (_, class_dir) in enumerate(folders):
        paths, bad_links = _walk(root, class_dir)
        todo += [(label, path) for path in paths]
        skipped += bad_links
    stamps = {}
    for label, path in todo:
        stat = path.stat()
        stamps[path] = (label, path.relative_to(root).as_posix(), [stat.st_size, stat.st_mtime_ns])
    fresh = [
        path
        for path, (_, relative, stamp) in stamps.items()
        if relative not in old or old[relative]["stamp"] != stamp
    ]
    # PIL decodes outside the GIL: a thread per core checks that many files at once
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        checked = dict(
            zip(
                fresh,
                progress_bar(
                    pool.map(_check, fresh), "checking images", total=len(fresh), enabled=progress, unit="img"
                ),
                strict=True,
            )
        )
    for path, (label, relative, stamp) in stamps.items():
        entry = {"stamp": stamp, **checked[path]} if path in checked else old[relative]
        files[relative] = {**entry, "label": label}
    if files != old:
        write_json(cache_file, {"version": SCAN_VERSION, "root": str(root), "files": files}, derived=True)
    return _dataset_from(root, [name for name, _ in folders], files, skipped)


def _dataset_from(
    root: Path, classes: list[str], files: dict[str, dict], skipped: list[tuple[str, str]]
) -> Dataset:
    good = [(entry["label"], relative) for relative, entry in files.items() if entry["ok"]]
    good.sort()
    digest = hashlib.blake2b(digest_size=16)
    for name in classes:
        digest.update(f"class:{name}\n".encode())
    for label, relative in good:
        digest.update(f"{label}:{files[relative]['sha']}\n".encode())
    sides = [min(files[r]["w"], files[r]["h"]) for _, r in good]
    return Dataset(
        root=root,
        classes=tuple(classes),
        paths=tuple(relative for _, relative in good),
        labels=np.array([label for label, _ in good], dtype=np.int64),
        unreadable=tuple(sorted([*((r, e["reason"]) for r, e in files.items() if not e["ok"]), *skipped])),
        fingerprint=digest.hexdigest(),
        median_side=int(np.median(sides)) if sides else 0,
    )


def find_datasets(folder: Path) -> list[Path]:
    """Class-folder datasets directly under ``folder``: sub-folders with 2 or more class folders
    that hold images. Looks at file names only, so it is quick."""
    if not folder.is_dir():
        return []

    def holds_images(path: Path) -> bool:
        return any(f.suffix.lower() in IMAGE_EXTENSIONS for f in path.iterdir())

    found = []
    for candidate in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        classes = [
            d for d in candidate.iterdir() if d.is_dir() and not d.name.startswith(".") and holds_images(d)
        ]
        if len(classes) >= 2:
            found.append(candidate)
    return found


def folder_stamp(root: str | Path) -> int:
    """Changes when an image is added, removed or renamed anywhere in the dataset (folders'
    modification times); cheap enough to check on every page load. 0 if the folder is gone."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return 0
    return max(os.stat(folder).st_mtime_ns for folder, _, _ in os.walk(root))
