"""Labels back from the labelling tool: a CSV manifest (``path,label``) or a Label Studio JSON
export becomes a new version of the dataset, never a change to the old one, so that the old
one's runs stay comparable.

The new version is a class-folder dataset under the uploads area (:data:`core.data.upload.UPLOADS`):
the old dataset's readable images (hard links where the disk allows, else copies) plus the newly
labelled ones in their class folders, and :data:`RECORD` saying where the labels came from and
when. Every row is checked before anything is written (an unknown path, an unknown class, a
duplicate row, an image already in the dataset), all problems named in one line; the version is
built in a hidden folder and renamed into place, so the list never shows half of one.

Paths in a manifest are absolute or relative to the manifest's folder (or to the pool the batch
came from, for a file uploaded in the browser, whose folder is nowhere); the batch CSV of
:mod:`core.answers.nextbatch.exports` with a ``label`` column added is such a manifest. A row
with an empty label (an image not labelled yet) is skipped and counted, as is a Label Studio task
without a (non-cancelled) annotation.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import itertools
import json
import os
import re
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from core.base.errors import UserError
from core.base.paths import check_writable, write_json
from core.base.words import counted
from core.data import upload
from core.data.datasets import IMAGE_EXTENSIONS, Dataset, scan

RECORD = "labels-import.json"  # in the new version's folder: a file at the top, not a class
SOURCE = "labels-import-source"  # the labels file as it came, beside RECORD (.csv or .json)
SHOWN = 3  # problems named in the one-line error; the rest are counted


@dataclass(frozen=True)
class LabelRow:
    """One labelled image from the file: where in the file (for messages), the image, its class."""

    where: str  # "row 3" (CSV, counting the header as row 1) or "task 2" (Label Studio, from 1)
    path: Path  # as resolved, not yet checked
    label: str


@dataclass(frozen=True)
class LabelFile:
    """What a labels file holds: its labelled rows, and how many rows had no label yet."""

    source: Path
    rows: tuple[LabelRow, ...]
    unlabelled: int


@dataclass(frozen=True)
class LabelImport:
    """A new dataset version: where it is, what it came from, its images per class."""

    dataset: Path
    parent: Path
    labels: Path
    counts: dict[str, int]  # images per class in the new version
    added: dict[str, int]  # newly labelled images per class
    unlabelled: int  # rows or tasks of the file without a label, left out

    def to_dict(self) -> dict:
        return {
            "dataset": str(self.dataset),
            "name": self.dataset.name,
            "parent": str(self.parent),
            "labels": str(self.labels),
            "counts": dict(self.counts),
            "added": dict(self.added),
            "total": sum(self.counts.values()),
            "unlabelled": self.unlabelled,
        }


def read_labels(path: str | Path, base: Path | None = None) -> LabelFile:
    """The labelled rows of a CSV manifest or a Label Studio JSON export (by extension); relative
    image paths are read against ``base``, else the file's own folder.

    Raises:
        UserError: the file is missing, of another kind, or not in the expected shape.
    """
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise UserError(f"labels file not found: {source}")
    base = source.parent if base is None else Path(base)
    if source.suffix.lower() == ".csv":
        return _read_csv(source, base)
    if source.suffix.lower() == ".json":
        return _read_label_studio(source, base)
    raise UserError(
        f"{source.name}: a labels file is a .csv manifest (path,label) or a Label Studio .json export"
    )


def _read_csv(source: Path, base: Path) -> LabelFile:
    try:
        reader = csv.DictReader(io.StringIO(source.read_text(encoding="utf-8-sig"), newline=""))
        records = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{source.name}: not a UTF-8 CSV file ({error})") from None
    missing = {"path", "label"} - set(reader.fieldnames or ())
    if missing:
        raise UserError(f"{source.name}: no {' or '.join(sorted(missing))} column; a manifest has path,label")
    rows, unlabelled = [], 0
    for number, row in enumerate(records, start=2):
        label, where = (row["label"] or "").strip(), (row["path"] or "").strip()
        if not label:
            unlabelled += 1
            continue
        rows.append(LabelRow(f"row {number}", _resolve(base, where), label))
    return LabelFile(source, tuple(rows), unlabelled)


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _read_label_studio(source: Path, base: Path) -> LabelFile:
    try:
        tasks = json.loads(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{source.name}: not a JSON file ({error})") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "data" in t for t in tasks):
        raise UserError(f"{source.name}: not a Label Studio JSON export (a list of tasks, each with 'data')")
    rows, unlabelled = [], 0
    for number, task in enumerate(tasks, start=1):
        label = _task_label(source, number, task)
        if label is None:
            unlabelled += 1
            continue
        rows.append(LabelRow(f"task {number}", _resolve(base, _task_path(source, number, task)), label))
    return LabelFile(source, tuple(rows), unlabelled)


def _task_label(source: Path, number: int, task: dict) -> str | None:
    """The class of the task's newest annotation that was not cancelled; None if it has none."""
    kept = [a for a in task.get("annotations") or () if not a.get("was_cancelled")]
    if not kept:
        return None
    choices = [
        choice
        for result in kept[-1].get("result") or ()
        for choice in (result.get("value") or {}).get("choices") or ()
    ]
    if len(choices) != 1:
        raise UserError(f"{source.name}: task {number}: {len(choices)} classes chosen; an image needs one")
    return str(choices[0])


def _task_path(source: Path, number: int, task: dict) -> str:
    """The image's path: ``data.path`` as exported, else from a local-files ``data.image``."""
    data = task["data"]
    if data.get("path"):
        return str(data["path"])
    image = str(data.get("image") or "")
    query = parse_qs(urlparse(image).query).get("d")
    if query:
        return "/" + query[0].lstrip("/")
    if image and not urlparse(image).scheme and not image.startswith("/data/"):
        return unquote(image)
    raise UserError(f"{source.name}: task {number}: no image path in its data (data.path or data.image)")


def check_rows(labels: LabelFile, dataset: Dataset) -> None:
    """Every problem of the file against the dataset, named in one line.

    Raises:
        UserError: an unknown path, an unknown class, a duplicate row, an image already in the
            dataset, or no labelled row at all; nothing has been written.
    """
    problems = [problem for row in labels.rows if (problem := _row_problem(row, dataset))]
    problems += _duplicates(labels.rows)
    if not labels.rows:
        problems.append(f"no labelled row ({labels.unlabelled} without a label)")
    if problems:
        more = f"; and {counted(len(problems) - SHOWN, 'more problem')}" if len(problems) > SHOWN else ""
        raise UserError(f"{labels.source.name}: {'; '.join(problems[:SHOWN])}{more}; nothing was written")


def _row_problem(row: LabelRow, dataset: Dataset) -> str | None:
    if row.label not in dataset.classes:
        return f"{row.where}: unknown class '{row.label}' (the classes are {', '.join(dataset.classes)})"
    if not row.path.is_file():
        return f"{row.where}: unknown path {row.path} (no such file)"
    if row.path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"{row.where}: {row.path} is not an image file ({', '.join(sorted(IMAGE_EXTENSIONS))})"
    if row.path.resolve().is_relative_to(dataset.root):
        return f"{row.where}: {row.path} is already in the dataset {dataset.root}"
    return None


def _duplicates(rows: tuple[LabelRow, ...]) -> list[str]:
    seen: dict[Path, LabelRow] = {}
    found = []
    for row in rows:
        key = row.path.resolve()
        if key in seen:
            found.append(f"duplicate row: {row.where} repeats {seen[key].where} ({row.path})")
        seen.setdefault(key, row)
    return found


def import_labels(
    data: str | Path,
    labels: str | Path,
    cache_dir: Path,
    name: str | None = None,
    uploads: Path | None = None,
    base: Path | None = None,
) -> LabelImport:
    """A new version of dataset ``data`` with the images labelled in ``labels`` added, named
    ``name`` or ``<dataset>-v2``, ``-v3``... (the first free one) under ``uploads``; relative
    image paths in ``labels`` are read against ``base`` (else the file's folder). The labels
    file itself is kept in the new version, beside :data:`RECORD`.

    Raises:
        UserError: any problem of the file (see :func:`check_rows`) or a ``name`` already taken;
            nothing is written.
    """
    check_writable()
    uploads = upload.UPLOADS if uploads is None else uploads
    dataset = scan(data, cache_dir)
    found = read_labels(labels, base)
    check_rows(found, dataset)
    wanted = upload.safe_name(name) if name else None
    if wanted and (uploads / wanted).exists():
        raise UserError(f"a dataset named '{wanted}' already exists in {uploads}; choose another --name")
    uploads.mkdir(parents=True, exist_ok=True)
    staging = uploads / f".incoming-{secrets.token_hex(4)}"
    try:
        counts = _build(staging, dataset, found)
        target = _claim(uploads, wanted, dataset.root.name, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    added = Counter(row.label for row in found.rows)
    return LabelImport(
        target,
        dataset.root,
        found.source,
        counts,
        {c: added[c] for c in dataset.classes if added[c]},
        found.unlabelled,
    )


def _build(staging: Path, dataset: Dataset, found: LabelFile) -> dict[str, int]:
    """The new version in ``staging``: old images, new images, the record. Images per class."""
    for name in dataset.classes:
        (staging / name).mkdir(parents=True)
    for relative in dataset.paths:
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(dataset.root / relative, target)
    for row in found.rows:
        _link_or_copy(row.path, _free(staging / row.label / row.path.name))
    shutil.copyfile(found.source, staging / f"{SOURCE}{found.source.suffix.lower()}")
    counts = Counter(dataset.classes[label] for label in dataset.labels.tolist())
    counts.update(row.label for row in found.rows)
    write_json(
        staging / RECORD,
        {
            "parent": str(dataset.root),
            "parent_fingerprint": dataset.fingerprint,
            "labels": str(found.source),
            "labels_blake2b": hashlib.blake2b(found.source.read_bytes(), digest_size=16).hexdigest(),
            "imported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "added": len(found.rows),
        },
    )
    return {name: counts[name] for name in dataset.classes}


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no space used; the images are never edited in place), else a copy."""
    try:
        os.link(source, target)
    except OSError:  # another file system, or links refused: the bytes are copied instead
        shutil.copy2(source, target)


def _free(path: Path) -> Path:
    """``path``, or ``name (2).png``... when two new images share a file name."""
    for n in itertools.count(1):
        candidate = path if n == 1 else path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise AssertionError("unreachable")


def _names(base: str) -> Iterator[str]:
    """``base-v2``, ``base-v3``...; a version's own ``-vN`` is counted on, not stacked."""
    stem, number = re.fullmatch(r"(.*?)(?:-v(\d+))?", base).groups()
    start = int(number) + 1 if number else 2
    return (f"{stem}-v{n}" for n in itertools.count(start))


def _claim(uploads: Path, wanted: str | None, base: str, staging: Path) -> Path:
    """Rename ``staging`` to ``wanted`` or the first free version name: an empty folder is made
    first (which fails if the name is taken, even in a race), then replaced whole."""
    for candidate in [wanted] if wanted else _names(base):
        target = uploads / candidate
        try:
            target.mkdir()
        except FileExistsError:
            if wanted:
                raise UserError(
                    f"a dataset named '{wanted}' already exists in {uploads}; choose another --name"
                ) from None
            continue
        os.replace(staging, target)
        return target
    raise AssertionError("unreachable")


def import_uploaded_labels(
    data: str | Path,
    file_name: str,
    content: bytes,
    cache_dir: Path,
    pool: Path | None = None,
    name: str | None = None,
) -> LabelImport:
    """:func:`import_labels` for a labels file that came as bytes (a browser upload): relative
    paths are read against ``pool``, the folder the batch was chosen from. Nothing is written
    when the file is invalid.

    Raises:
        UserError: as :func:`import_labels`.
    """
    with tempfile.TemporaryDirectory(prefix="labels-") as folder:
        source = Path(folder) / (Path(file_name).name or "labels.csv")
        source.write_bytes(content)
        return import_labels(data, source, cache_dir, name, base=pool)
