"""Uploads: zips and loose images unpack into class folders; unsafe or oversized archives are
refused in one line, leaving nothing behind; an existing dataset is never overwritten."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.base.errors import UserError
from core.data.datasets import find_datasets, scan
from core.data.upload import (
    DEFAULT_LIMITS,
    Limits,
    delete_upload,
    import_images,
    import_pool,
    import_zips,
    list_pools,
    list_uploads,
    safe_name,
)
from tests.conftest import TINY_CLASSES, TINY_PER_CLASS


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _class_members(folder: Path, top: str = "", classes=TINY_CLASSES) -> dict[str, bytes]:
    """The tiny dataset's real PNGs as zip members, optionally under one top folder."""
    return {
        f"{top}{name}/{path.name}": path.read_bytes()
        for name in classes
        for path in sorted((folder / name).iterdir())
    }


def _left_behind(uploads: Path) -> list[str]:
    return sorted(p.name for p in uploads.iterdir()) if uploads.exists() else []


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def png(tiny_data) -> bytes:
    return next((tiny_data / TINY_CLASSES[0]).iterdir()).read_bytes()


@pytest.mark.parametrize("top", ["", "fashion/"])
def test_zip_of_class_folders_scans_to_its_classes(tiny_data, tmp_path, cache_dir, top):
    uploads = tmp_path / "uploads"
    report = import_zips([("tiny.zip", _zip(_class_members(tiny_data, top)))], "tiny", uploads)
    assert report.name == "tiny" and report.root == uploads / "tiny"
    assert report.images == {name: TINY_PER_CLASS for name in TINY_CLASSES}
    assert report.skipped == ()
    dataset = scan(report.root, cache_dir)
    assert dataset.counts() == {name: TINY_PER_CLASS for name in sorted(TINY_CLASSES)}
    assert dataset.unreadable == ()
    assert list_uploads(uploads) == [uploads / "tiny"]
    assert _left_behind(uploads) == ["tiny"]
    assert report.to_dict()["total"] == 3 * TINY_PER_CLASS


def test_zip_given_as_a_path_or_a_stream(tiny_data, tmp_path):
    data = _zip(_class_members(tiny_data))
    (tmp_path / "on-disk.zip").write_bytes(data)
    uploads = tmp_path / "uploads"
    by_path = import_zips([("on-disk.zip", tmp_path / "on-disk.zip")], "a", uploads)
    by_stream = import_zips([("stream.zip", io.BytesIO(data))], "b", uploads)
    assert by_path.images == by_stream.images == {name: TINY_PER_CLASS for name in TINY_CLASSES}


def test_two_zips_merge_into_one_dataset(tiny_data, tmp_path, cache_dir):
    first = _zip(_class_members(tiny_data, "part1/", TINY_CLASSES[:2]))
    second = _zip(_class_members(tiny_data, "", TINY_CLASSES[2:]) | {"notes.txt": b"hello"})
    taken = sorted((tiny_data / TINY_CLASSES[0]).iterdir())[0]
    other = sorted((tiny_data / TINY_CLASSES[1]).iterdir())[0].read_bytes()
    clash = _zip({f"{TINY_CLASSES[0]}/{taken.name}": other, f"{TINY_CLASSES[1]}/new.png": other})
    report = import_zips([("a.zip", first), ("b.zip", second), ("c.zip", clash)], "merged", tmp_path)
    expected = {TINY_CLASSES[0]: TINY_PER_CLASS + 1, TINY_CLASSES[1]: TINY_PER_CLASS + 1}
    assert report.images == expected | {TINY_CLASSES[2]: TINY_PER_CLASS}
    assert report.skipped[0][0] == "b.zip: notes.txt"  # several zips: the member's zip is named
    assert scan(report.root, cache_dir).counts() == {
        name: report.images[name] for name in sorted(TINY_CLASSES)
    }
    assert (report.root / TINY_CLASSES[0] / taken.name).read_bytes() == taken.read_bytes()
    renamed = report.root / TINY_CLASSES[0] / f"{taken.stem} (2){taken.suffix}"
    assert renamed.read_bytes() == other  # a clash inside the upload is kept apart, not overwritten


def test_deeper_folders_inside_a_class_are_kept(png, tmp_path, cache_dir):
    members = {"cat/a.png": png, "cat/closeups/b.png": png, "dog/c.png": png, "dog\\d.png": png}
    report = import_zips([("pets.zip", _zip(members))], "pets", tmp_path)
    assert report.images == {"cat": 2, "dog": 2}  # a Windows zip's backslashes are folders too
    assert scan(report.root, cache_dir).counts() == {"cat": 2, "dog": 2}


def test_non_images_and_system_files_are_skipped_by_name(png, tmp_path):
    members = {
        "cat/a.png": png,
        "dog/b.png": png,
        "notes.txt": b"hello",
        "cat/.DS_Store": b"\0\0",
        "__MACOSX/cat/._a.png": b"resource fork",
        "dog/empty.jpg": b"",
    }
    report = import_zips([("pets.zip", _zip(members))], "pets", tmp_path)
    assert report.images == {"cat": 1, "dog": 1}
    skipped = dict(report.skipped)
    assert set(skipped) == {"notes.txt", "cat/.DS_Store", "__MACOSX/cat/._a.png", "dog/empty.jpg"}
    assert "not an image (.txt" in skipped["notes.txt"]
    assert "hidden" in skipped["cat/.DS_Store"] and "hidden" in skipped["__MACOSX/cat/._a.png"]
    assert skipped["dog/empty.jpg"] == "empty file"
    assert not (report.root / "notes.txt").exists() and not (report.root / "__MACOSX").exists()


def test_images_outside_class_folders_are_refused_by_name(png, tmp_path):
    with pytest.raises(UserError) as caught:
        import_zips([("flat.zip", _zip({"a.png": png, "b.png": png, "cat/c.png": png}))], "flat", tmp_path)
    assert str(caught.value).startswith("flat.zip: images outside any class folder: a.png, b.png;")
    assert _left_behind(tmp_path) == []


def _symlink_zip(png: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat/a.png", png)
        link = zipfile.ZipInfo("cat/link.png")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "../../../etc/passwd")
    return buffer.getvalue()


def _bomb_zip(png: bytes) -> bytes:
    return _zip({"cat/a.png": png, "cat/bomb.png": bytes(10_000_000)})


def _lying_zip(png: bytes) -> bytes:
    """A member whose local and central headers say 1,000 bytes; its data unpacks to 300,000."""
    data = bytearray(_zip({"cat/a.png": png, "cat/liar.png": bytes(300_000)}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("cat/liar.png")
    name = info.filename.encode()
    central = next(
        i for i in range(len(data)) if data[i : i + 4] == b"PK\x01\x02" and data[i + 46 :].startswith(name)
    )
    struct.pack_into("<I", data, info.header_offset + 22, 1000)  # local header: uncompressed size
    struct.pack_into("<I", data, central + 24, 1000)  # central directory: uncompressed size
    return bytes(data)


REFUSED = {
    "dotdot": (lambda png: _zip({"cat/a.png": png, "../evil.png": png}), "../evil.png: refused: '..'"),
    "absolute": (
        lambda png: _zip({"cat/a.png": png, "/abs/evil.png": png}),
        "/abs/evil.png: refused: an abs",
    ),
    "climbs": (lambda png: _zip({"cat/../../evil.png": png}), "cat/../../evil.png: refused: '..'"),
    "backslash": (lambda png: _zip({"cat\\..\\..\\evil.png": png}), "cat\\..\\..\\evil.png: refused: '..'"),
    "drive": (lambda png: _zip({"C:/evil.png": png}), "C:/evil.png: refused: an absolute path"),
    "symlink": (_symlink_zip, "cat/link.png: refused: a symbolic link"),
    "bomb": (_bomb_zip, "cat/bomb.png: refused: compressed"),
    "lying header": (_lying_zip, "cat/liar.png: damaged, its data does not match its header"),
    "truncated": (lambda png: _zip({"cat/a.png": png})[:200], "not a zip archive (or it is damaged): "),
    "text": (
        lambda png: b"just some notes\n",
        "not a zip archive (or it is damaged): File is not a zip file",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_unsafe_or_broken_archives_are_refused_in_one_line(png, tmp_path, case):
    build, expected = REFUSED[case]
    uploads = tmp_path / "uploads"
    with pytest.raises(UserError) as caught:
        import_zips([("bad.zip", build(png))], "bad", uploads)
    message = str(caught.value)
    assert message.startswith("bad.zip: ") and expected in message and "\n" not in message
    assert _left_behind(uploads) == []
    assert not (tmp_path / "evil.png").exists() and not Path("/abs/evil.png").exists()


def test_limits_refuse_too_many_files_and_too_many_bytes(png, tmp_path):
    archive = _zip({f"cat/{i}.png": png for i in range(4)} | {"dog/x.png": png})
    for limits, expected in [
        (Limits(files=3), "bad.zip: cat/3.png: refused: more than 3 images in one upload"),
        (Limits(total_bytes=2 * len(png)), "bad.zip: cat/2.png: refused: the upload unpacks to more than"),
        (Limits(file_bytes=len(png) - 1), "bad.zip: cat/0.png: refused: "),
    ]:
        with pytest.raises(UserError, match=expected):
            import_zips([("bad.zip", archive)], "bad", tmp_path, limits)
        assert _left_behind(tmp_path) == []


def test_a_small_ratio_limit_refuses_a_compressible_member(png, tmp_path):
    few_values = np.random.default_rng(0).integers(0, 4, 2_000_000, dtype=np.uint8).tobytes()  # ~4x
    archive = _zip({"cat/a.png": png, "dog/flat.bmp": few_values})
    with pytest.raises(UserError, match=r"dog/flat.bmp: refused: compressed \d times, over the limit of 2"):
        import_zips([("flat.zip", archive)], "flat", tmp_path, Limits(ratio=2))
    assert import_zips([("flat.zip", archive)], "flat", tmp_path).images == {"cat": 1, "dog": 1}


def test_a_second_import_never_touches_the_first(tiny_data, tmp_path):
    archive = _zip(_class_members(tiny_data))
    first = import_zips([("tiny.zip", archive)], "tiny", tmp_path)
    before = _tree(first.root)
    second = import_zips(
        [("other.zip", _zip(_class_members(tiny_data, "", TINY_CLASSES[:2])))], "tiny", tmp_path
    )
    third = import_zips([("tiny.zip", archive)], "tiny", tmp_path)
    assert (second.name, third.name) == ("tiny (2)", "tiny (3)")
    assert _tree(first.root) == before
    assert sorted(p.name for p in list_uploads(tmp_path)) == ["tiny", "tiny (2)", "tiny (3)"]


def test_progress_counts_up_to_the_total(tiny_data, tmp_path):
    calls = []
    import_zips(
        [("tiny.zip", _zip(_class_members(tiny_data)))],
        "tiny",
        tmp_path,
        on_progress=lambda *c: calls.append(c),
    )
    total = 3 * TINY_PER_CLASS
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == list(range(total + 1))


def test_loose_images_add_to_a_class_and_clashes_get_a_suffix(png, tiny_data, tmp_path, cache_dir):
    created = import_images(
        [("a.png", png), ("b.png", io.BytesIO(png)), ("readme.md", b"# hi")], "cat", "pets", tmp_path
    )
    assert created.root == tmp_path / "pets" and created.images == {"cat": 2}
    assert created.skipped[0][0] == "readme.md" and "not an image" in created.skipped[0][1]
    other = (tiny_data / TINY_CLASSES[1]).iterdir()
    calls = []
    added = import_images(
        [("a.png", next(other).read_bytes()), ("C:\\photos\\dog.png", png)],
        "dog",
        "pets",
        tmp_path,
        on_progress=lambda *c: calls.append(c),
    )
    assert calls == [(0, 2), (1, 2), (2, 2)]
    clash = import_images([("a.png", next(other).read_bytes())], "cat", "pets", tmp_path)
    assert added.images == {"dog": 2} and clash.images == {"cat": 1}
    assert sorted(p.name for p in (tmp_path / "pets" / "cat").iterdir()) == ["a (2).png", "a.png", "b.png"]
    assert (tmp_path / "pets" / "cat" / "a.png").read_bytes() == png  # the first, untouched
    assert (tmp_path / "pets" / "dog" / "dog.png").read_bytes() == png  # a Windows path's file name
    assert scan(tmp_path / "pets", cache_dir).counts() == {"cat": 3, "dog": 2}
    assert _left_behind(tmp_path) == ["pets"]


def test_loose_images_are_held_to_the_limits_as_they_stream(png, tmp_path):
    with pytest.raises(UserError, match=r"^big.png: refused: unpacks to over \d+ bytes, the limit per file$"):
        import_images(
            [("big.png", io.BytesIO(png))], "cat", "pets", tmp_path, Limits(file_bytes=len(png) // 2)
        )
    streams = [(f"{i}.png", io.BytesIO(png)) for i in range(3)]
    with pytest.raises(UserError, match=r"^2.png: refused: the upload unpacks to over \d+ bytes, the limit$"):
        import_images(streams, "cat", "pets", tmp_path, Limits(total_bytes=2 * len(png) + 1))
    with pytest.raises(UserError, match="none of the 1 file"):
        import_images([("notes.txt", b"x")], "cat", "pets", tmp_path)
    assert _left_behind(tmp_path) == []


def test_delete_removes_an_upload_and_refuses_anything_else(png, tmp_path):
    outside = tmp_path / "x"
    outside.mkdir()
    uploads = tmp_path / "uploads"
    report = import_zips([("pets.zip", _zip({"cat/a.png": png, "dog/b.png": png}))], "pets", uploads)
    for name in ("../x", "..", "", "/etc", "pets/cat"):
        with pytest.raises(UserError):
            delete_upload(name, uploads)
    with pytest.raises(UserError, match="no uploaded dataset named 'ghost'"):
        delete_upload("ghost", uploads)
    assert delete_upload("pets", uploads) == report.root
    assert _left_behind(uploads) == [] and outside.is_dir()


def test_safe_name_keeps_spaces_and_refuses_empty_names():
    assert safe_name("  my flowers ") == "my flowers"
    assert safe_name("a/b\\c") == "a-b-c"
    assert safe_name("../x") == "x" and safe_name(".hidden") == "hidden"
    assert safe_name("tab\there") == "tabhere"
    for bad in ("", "   ", "..", ".", "/", "\x00"):
        with pytest.raises(UserError):
            safe_name(bad)


def test_limits_are_described_in_one_sentence():
    text = DEFAULT_LIMITS.describe()
    assert (
        "50,000 images" in text and "2.0 GB" in text and "50.0 MB per image" in text and "200 times" in text
    )


def test_a_pool_zip_keeps_any_layout_and_is_never_listed_as_a_dataset(png, tmp_path):
    uploads = tmp_path / "uploads"
    members = {"loose.png": png, "camera 1/2026/a.png": png, "camera 2/b.png": png, "notes.txt": b"x"}
    imported = import_pool("shop floor.zip", _zip(members), "shop floor", uploads)
    assert imported.root == uploads / ".pools" / "shop floor"
    assert set(_tree(imported.root)) == {"loose.png", "camera 1/2026/a.png", "camera 2/b.png"}
    assert imported.skipped == (("notes.txt", imported.skipped[0][1]),)
    assert list_pools(uploads) == [imported.root]
    assert find_datasets(uploads) == [] and list_uploads(uploads) == [], "a pool is no dataset"
    again = import_pool("shop floor.zip", _zip(members), "shop floor", uploads)
    assert again.root.name == "shop floor (2)", "a second pool of the same name never overwrites"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"notes.txt": b"x"}, "pool.zip: no images in this zip; it should hold images, in any folders"),
        ({"../escape.png": b"x"}, "'..' in its path would lead outside the dataset folder"),
    ],
)
def test_a_bad_pool_zip_is_refused_in_one_line_leaving_nothing(members, message, tmp_path):
    uploads = tmp_path / "uploads"
    with pytest.raises(UserError, match=re.escape(message)):
        import_pool("pool.zip", _zip(members), "pool", uploads)
    assert list_pools(uploads) == [] and _left_behind(uploads / ".pools") == []
