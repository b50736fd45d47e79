"""Uploaded datasets: zips of class folders, or loose images under a typed class name, each
dataset in one folder under ``data/uploads/``.

An upload is untrusted: every member path must stay inside its dataset folder, links are refused,
and the limits (stated on the Data page by :meth:`Limits.describe`) stop archive bombs before they
fill the disk, by declared sizes before anything is written and by the bytes counted as they
stream. A dataset is unpacked into a hidden folder beside its target and renamed into place, so
the list never shows half of one, a failed upload leaves nothing, and no dataset is overwritten.
Whether an image decodes is :func:`core.data.datasets.scan`'s job: it reports unreadable files.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import os
import re
import secrets
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeVar

from core.base.errors import UserError
from core.base.paths import PROJECT_ROOT, check_space, check_writable, disk_full, human_bytes, is_disk_full
from core.base.words import counted
from core.data.datasets import IMAGE_EXTENSIONS, find_datasets

T = TypeVar("T")
UPLOADS = Path(os.environ.get("HMD_UPLOADS") or PROJECT_ROOT / "data" / "uploads")  # $HMD_UPLOADS moves it
POOLS_FOLDER = ".pools"  # uploads/.pools/<name>: unlabelled pools, hidden so no picker lists one as a dataset


def local_datasets() -> list[Path]:
    """The datasets a user can pick without typing a path: the bundled ones under ``data/`` and
    the uploaded ones. The sidebar and the Data page both list these, so a dataset switched
    away from can always be switched back to."""
    return [*find_datasets(PROJECT_ROOT / "data"), *find_datasets(UPLOADS)]


# Decimal, so that the limits read as round numbers on the page (human_bytes is decimal).
MAX_FILES = 50_000  # images per upload: ten times the bundled Fashion-MNIST sample; a few minutes' scan
MAX_TOTAL_BYTES = 2_000_000_000  # unpacked per upload: images hardly compress, so ~10 uploads of 200 MB
MAX_FILE_BYTES = 50_000_000  # per image: a 16-megapixel uncompressed TIFF; training resizes far below
MAX_RATIO = 200  # JPEG/PNG/WebP compress ~1x in a zip, raw BMP/TIFF photos a few x; deflate bombs ~1000x
RATIO_FROM_BYTES = 1_000_000  # smaller members cannot fill a disk, and a flat synthetic BMP may pass 200x
CHUNK = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
Progress = Callable[[int, int], None]  # (images written, images in the upload)


@dataclass(frozen=True)
class Limits:
    """What one upload may unpack to; stated on the page, so that a refusal never surprises."""

    files: int = MAX_FILES
    total_bytes: int = MAX_TOTAL_BYTES
    file_bytes: int = MAX_FILE_BYTES
    ratio: float = MAX_RATIO

    def describe(self) -> str:
        """The limits in one sentence, for the upload form."""
        return (
            f"Each upload may hold at most {self.files:,} images, {human_bytes(self.total_bytes)} unpacked "
            f"in all and {human_bytes(self.file_bytes)} per image; a file compressed more than "
            f"{self.ratio:g} times (an archive bomb), a link, or a path leading out of its folder is refused."
        )


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ImportReport:
    """What one upload added: images per class, and the files left out, with the reason."""

    name: str
    root: Path
    images: dict[str, int]  # class -> images written by this upload
    skipped: tuple[tuple[str, str], ...]  # (member or file name, reason)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "root": str(self.root),
            "images": dict(self.images),
            "total": sum(self.images.values()),
            "skipped": [list(item) for item in self.skipped],
        }


@dataclass(frozen=True)
class _Member:
    """One image to write: where it came from (for messages) and where it goes."""

    source: str  # the archive or file name as uploaded
    name: str  # the member name inside the archive ("" for a loose file)
    parts: tuple[str, ...]  # path below the dataset folder: class, [folders...], file
    size: int | None  # declared unpacked size, when known
    open: Callable[[], AbstractContextManager[BinaryIO]]


def safe_name(text: str) -> str:
    """``text`` as a name one folder can hold: slashes join its parts with '-' ('.' and '..' parts
    go), control characters and leading dots go (a hidden folder is invisible to scan and list).

    Raises:
        UserError: nothing is left, or the name is too long for a folder.
    """
    parts = re.split(r"[/\\]", _CONTROL.sub("", text))
    name = "-".join(p.strip() for p in parts if p.strip(" .")).lstrip(".").strip()
    if not name:
        raise UserError(f"name '{_show(text)}' is empty once unusable characters go; type letters or digits")
    if len(name.encode()) > 200:
        raise UserError(f"name '{_show(text)[:40]}...' is too long for a folder; use at most 200 bytes")
    return name


def import_zips(
    archives: list[tuple[str, BinaryIO | bytes | Path]],
    name: str,
    uploads: Path = UPLOADS,
    limits: Limits = DEFAULT_LIMITS,
    on_progress: Progress | None = None,
    classes: bool = True,
) -> ImportReport:
    """Unpack zips of class folders (at the top, or under one common folder) into a new dataset
    ``uploads/<name>``, or ``<name> (2)`` if that exists. Several zips merge into one dataset.
    ``classes=False`` takes images in any layout (an unlabelled pool: :func:`import_pool`).

    Raises:
        UserError: one line naming the archive and member: not a zip, an unsafe path, a link, a
            limit passed, images outside class folders, no images. Nothing is left behind.
    """
    check_writable()
    name = safe_name(name)
    if not archives:
        raise UserError("no zip archive to import; choose one or more .zip files")
    skipped: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        members: list[_Member] = []
        for source, data in archives:
            archive = stack.enter_context(_open_zip(_show(source), data))
            prefix = f"{_show(source)}: " if len(archives) > 1 else ""  # say which zip, when several
            members += _zip_members(_show(source), archive, limits, skipped, prefix, classes)
        staging = _staging(uploads, members, limits)
        try:
            counts = _unpack(members, staging, limits, skipped, on_progress)
            root = _claim(uploads / name, lambda path: path.mkdir() or path, folder=True)
            os.replace(staging, root)  # onto the empty folder just claimed: others see all or nothing
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return ImportReport(root.name, root, counts, tuple(skipped))


def import_pool(
    source: str,
    data: BinaryIO | bytes | Path,
    name: str,
    uploads: Path = UPLOADS,
    limits: Limits = DEFAULT_LIMITS,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Unpack a zip of unlabelled images, in any layout, into ``uploads/.pools/<name>``: a pool
    the next batch is chosen from, checked as an upload of labelled images is.

    Raises:
        UserError: as :func:`import_zips`, except that images need no class folders.
    """
    pools = uploads / POOLS_FOLDER
    check_writable()
    pools.mkdir(parents=True, exist_ok=True)
    return import_zips([(source, data)], name, pools, limits, on_progress, classes=False)


def list_pools(uploads: Path = UPLOADS) -> list[Path]:
    """The uploaded pools, by name."""
    return list_uploads(uploads / POOLS_FOLDER)


def import_images(
    files: list[tuple[str, BinaryIO | bytes]],
    class_name: str,
    name: str,
    uploads: Path = UPLOADS,
    limits: Limits = DEFAULT_LIMITS,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Add loose images to class ``class_name`` of uploaded dataset ``name`` (created if missing).
    A file name already in the class gets a suffix ("cat (2).png"); nothing is overwritten.

    Raises:
        UserError: no images among the files, a limit passed, or ``name`` is not an upload.
    """
    check_writable()
    name, class_name = safe_name(name), safe_name(class_name)
    target = _inside(uploads, name)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} is a file, not a dataset folder; choose another dataset name")
    skipped: list[tuple[str, str]] = []
    members = []
    for source, data in files:
        source = _show(source)
        base = source.replace("\\", "/").rsplit("/", 1)[-1]  # a browser may send a whole path
        size = len(data) if isinstance(data, bytes | bytearray) else None
        reason = _skip_reason((base,), size) if base.strip(" .") else "no file name"
        if reason:
            skipped.append((source, reason))
            continue
        _check_declared(source, "", size or 0, size or 0, limits)
        if isinstance(data, bytes | bytearray):
            opener = functools.partial(io.BytesIO, data)
        else:  # the caller's stream: read from its start, and leave it open
            opener = functools.partial(contextlib.nullcontext, data)
            if data.seekable():
                data.seek(0)
        members.append(_Member(source, "", (class_name, safe_name(base)), size, opener))
    if not members:
        few = _few([s for s, _ in skipped])
        raise UserError(f"none of the {counted(len(files), 'file')} is an image: {few}")
    staging = _staging(uploads, members, limits)
    try:
        counts = _unpack(members, staging, limits, skipped, on_progress)
        (target / class_name).mkdir(parents=True, exist_ok=True)
        for path in sorted((staging / class_name).iterdir()):  # a hard link fails rather than overwrite
            _claim(target / class_name / path.name, functools.partial(os.link, path))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ImportReport(name, target, counts, tuple(skipped))


def list_uploads(uploads: Path = UPLOADS) -> list[Path]:
    """The uploaded datasets, by name (unfinished uploads, hidden, are left out)."""
    if not uploads.is_dir():
        return []
    return sorted(p for p in uploads.iterdir() if p.is_dir() and not p.name.startswith("."))


def delete_upload(name: str, uploads: Path = UPLOADS) -> Path:
    """Remove uploaded dataset ``name``. It is first renamed to a hidden folder, so that it leaves
    the list at once, whole. Its cached runs stay until the cache is cleared.

    Raises:
        UserError: ``name`` would lead outside ``uploads``, or there is no such dataset.
    """
    check_writable()
    target = _inside(uploads, name)
    if not target.is_dir():
        raise UserError(f"no uploaded dataset named '{_show(name)}' in {uploads}")
    doomed = uploads / f".deleting-{secrets.token_hex(4)}"
    os.rename(target, doomed)
    shutil.rmtree(doomed)
    return target


def _inside(uploads: Path, name: str) -> Path:
    target = uploads / name
    if name in ("", ".", "..") or target.resolve().parent != uploads.resolve():
        raise UserError(f"'{_show(name)}' leads outside {uploads}; an uploaded dataset's name is one folder")
    return target


def _show(text: str) -> str:
    """A name fit for a one-line message."""
    return _CONTROL.sub("?", text)


def _at(source: str, member: str) -> str:
    return f"{source}: {_show(member)}" if member else source


def _refused(member: _Member | tuple[str, str], why: str) -> UserError:
    source, name = (member.source, member.name) if isinstance(member, _Member) else member
    return UserError(f"{_at(source, name)}: refused: {why}")


def _few(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _reason(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _open_zip(source: str, data: BinaryIO | bytes | Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes | bytearray) else data)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise UserError(f"{source}: not a zip archive (or it is damaged): {_reason(error)}") from None


def _safe_parts(source: str, name: str) -> tuple[str, ...]:
    """The member's path as folder names below the dataset folder; backslashes count as slashes,
    since a zip made on Windows may use them, and so may a path trick.

    Raises:
        UserError: the path is absolute, has a drive letter or control characters, or climbs out.
    """
    path = name.replace("\\", "/")
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if path.startswith("/") or _DRIVE.match(path):
        raise _refused((source, name), "an absolute path would lead outside the dataset folder")
    if ".." in parts:
        raise _refused((source, name), "'..' in its path would lead outside the dataset folder")
    if _CONTROL.search(path):
        raise _refused((source, name), "control characters in its name")
    return parts


def _skip_reason(parts: tuple[str, ...], size: int | None) -> str | None:
    """Why a file is left out, or None for an image to unpack."""
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return "hidden or system file (such as __MACOSX or .DS_Store)"
    suffix = PurePosixPath(parts[-1]).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        known = ", ".join(sorted(IMAGE_EXTENSIONS))
        return f"not an image ({suffix or 'no extension'}; images end in {known})"
    return "empty file" if size == 0 else None


def _check_declared(source: str, member: str, size: int, compressed: int, limits: Limits) -> None:
    if size > limits.file_bytes:
        why = f"{human_bytes(size)} unpacked, over the limit of {human_bytes(limits.file_bytes)} per file"
        raise _refused((source, member), why)
    ratio = size / max(compressed, 1)
    if size > RATIO_FROM_BYTES and ratio > limits.ratio:
        why = f"compressed {ratio:.0f} times, over the limit of {limits.ratio:g}: the mark of an archive bomb"
        raise _refused((source, member), why)


def _zip_members(
    source: str, archive: zipfile.ZipFile, limits: Limits, skipped: list, prefix: str, classes: bool = True
) -> list[_Member]:
    """The archive's images, checked against its declared sizes, with class folders at the top
    (``classes``), else as they lie."""
    found = []
    for info in archive.infolist():
        parts = _safe_parts(source, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refused((source, info.filename), "a symbolic link (it could point anywhere)")
        if info.is_dir() or not parts:
            continue
        reason = _skip_reason(parts, info.file_size)
        if reason:
            skipped.append((prefix + _show(info.filename), reason))
            continue
        if info.flag_bits & 0x1:
            raise UserError(f"{_at(source, info.filename)}: encrypted; upload a zip made without a password")
        _check_declared(source, info.filename, info.file_size, info.compress_size, limits)
        found.append((parts, info))
    if not found:
        hint = "one folder of images per class" if classes else "images, in any folders"
        raise UserError(f"{source}: no images in this zip; it should hold {hint}")
    if classes:
        found = _class_layout(source, found)
    return [_Member(source, i.filename, p, i.file_size, functools.partial(archive.open, i)) for p, i in found]


def _class_layout(source: str, found: list[tuple[tuple[str, ...], zipfile.ZipInfo]]) -> list:
    """``found`` with one common top folder dropped ("flowers/tulip/1.jpg"), once every image is
    in a class folder.

    Raises:
        UserError: images outside any class folder, named.
    """
    if len({parts[0] for parts, _ in found}) == 1 and all(len(parts) >= 3 for parts, _ in found):
        found = [(parts[1:], info) for parts, info in found]
    loose = [_show(info.filename) for parts, info in found if len(parts) == 1]
    if loose:
        raise UserError(
            f"{source}: images outside any class folder: {_few(loose)}; "
            "put each class's images in a folder named after the class, and zip those folders"
        )
    return found


def _staging(uploads: Path, members: list[_Member], limits: Limits) -> Path:
    """A fresh hidden folder beside the datasets, once the upload's count and declared total fit."""
    total = 0
    for count, member in enumerate(members, start=1):
        total += member.size or 0
        if count > limits.files:
            raise _refused(member, f"more than {limits.files:,} images in one upload (the limit)")
        if total > limits.total_bytes:
            raise _refused(
                member, f"the upload unpacks to more than {human_bytes(limits.total_bytes)} (the limit)"
            )
    check_space(uploads, total)
    staging = uploads / f".incoming-{secrets.token_hex(4)}"
    staging.mkdir()
    return staging


def _unpack(
    members: list[_Member], folder: Path, limits: Limits, skipped: list, on_progress: Progress | None
) -> dict[str, int]:
    """Write every member below ``folder`` (a name clash gets a suffix), reporting progress."""
    counts: dict[str, int] = {}
    total = 0
    if on_progress:
        on_progress(0, len(members))
    for done, member in enumerate(members, start=1):
        path = folder.joinpath(*member.parts)
        if not path.resolve().is_relative_to(folder.resolve()):  # _safe_parts should make this impossible
            raise _refused(member, "its path leads outside the dataset folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with member.open() as stream, _claim(path, functools.partial(open, mode="xb")) as out:
                written = _copy(stream, out, member, limits, room=limits.total_bytes - total)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
            where = _at(member.source, member.name)
            raise UserError(
                f"{where}: damaged, its data does not match its header: {_reason(error)}"
            ) from None
        except OSError as error:
            if is_disk_full(error):
                raise disk_full(folder.parent) from None
            why = error.strerror or _reason(error)
            raise UserError(f"{_at(member.source, member.name)}: cannot be written: {why}") from None
        total += written
        if written == 0:  # a stream of unknown size that turned out empty
            Path(out.name).unlink()
            skipped.append((_at(member.source, member.name), "empty file"))
        else:
            counts[member.parts[0]] = counts.get(member.parts[0], 0) + 1
        if on_progress:
            on_progress(done, len(members))
    return counts


def _copy(stream: BinaryIO, out: BinaryIO, member: _Member, limits: Limits, room: int) -> int:
    """Copy ``stream`` to ``out``, stopping once it passes the limit per file or the ``room`` left
    in the upload: what counts is the bytes that stream, not what a header claims."""
    written = 0
    while chunk := stream.read(CHUNK):
        written += len(chunk)
        if written > limits.file_bytes:
            raise _refused(member, f"unpacks to over {human_bytes(limits.file_bytes)}, the limit per file")
        if written > room:
            raise _refused(member, f"the upload unpacks to over {human_bytes(limits.total_bytes)}, the limit")
        out.write(chunk)
    return written


def _claim(path: Path, make: Callable[[Path], T], folder: bool = False) -> T:
    """``make`` (which fails if its path exists) the first free one of ``path``, ``path (2)``...
    (the number goes before a file's extension): a clash never overwrites, even in a race."""
    stem, suffix = (path.name, "") if folder else (path.stem, path.suffix)
    for n in itertools.count(1):
        with contextlib.suppress(FileExistsError):
            return make(path if n == 1 else path.with_name(f"{stem} ({n}){suffix}"))
    raise AssertionError("unreachable")
