"""Scanning class folders: odd formats become RGB, bad files are reported, bad folders refused."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.base.errors import UserError
from core.data.datasets import load_rgb, scan


def _photo(size=(20, 10)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def odd_data(tmp_path: Path) -> Path:
    """Two classes of valid images in every awkward format, plus files that must be skipped."""
    a, b = tmp_path / "cat", tmp_path / "dog"
    a.mkdir(), b.mkdir()
    _photo().save(a / "plain.JPG")
    _photo().convert("L").save(a / "grey.png")
    _photo().convert("P").save(a / "palette.gif")
    rgba = _photo().convert("RGBA")
    rgba.putalpha(0)  # fully transparent: must come out white
    rgba.save(a / "transparent.png")
    _photo().convert("CMYK").save(b / "cmyk.jpeg")
    Image.fromarray(np.arange(200, dtype=np.uint16).reshape(10, 20) * 300).save(b / "deep.tif")
    _photo().save(b / "photo.WebP")
    _photo().save(b / "bitmap.bmp")
    (b / "nested").mkdir()
    _photo().save(b / "nested" / "inner.png")
    # skipped without a word: hidden files, hidden folders, other file types
    _photo().save(a / ".hidden.png")
    (a / ".thumbs").mkdir()
    _photo().save(a / ".thumbs" / "t.png")
    (a / "notes.txt").write_text("not an image")
    # reported as unreadable
    (a / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    good = a / "plain.JPG"
    (b / "truncated.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    return tmp_path


def test_scan_counts_readable_images_and_reports_bad_files(odd_data, cache_dir):
    dataset = scan(odd_data, cache_dir)
    assert dataset.classes == ("cat", "dog")
    assert dataset.counts() == {"cat": 4, "dog": 5}
    assert [path for path, _ in dataset.unreadable] == ["cat/corrupt.jpg", "dog/truncated.jpg"]
    assert all(reason for _, reason in dataset.unreadable)
    assert "dog/nested/inner.png" in dataset.paths
    assert not any("hidden" in p or "thumbs" in p or p.endswith(".txt") for p in dataset.paths)


def test_every_format_loads_as_8bit_rgb(odd_data, cache_dir):
    dataset = scan(odd_data, cache_dir)
    for relative in dataset.paths:
        image = load_rgb(dataset.root / relative)
        assert image.mode == "RGB", relative
        assert image.size == (20, 10), relative
    white = np.asarray(load_rgb(odd_data / "cat" / "transparent.png"))
    assert (white == 255).all()
    deep = np.asarray(load_rgb(odd_data / "dog" / "deep.tif"))
    assert deep.max() > 128, "16-bit values must be scaled down, not clipped to black/white"
    assert len(np.unique(deep)) > 50


def test_exif_orientation_is_honoured(tmp_path):
    image = _photo(size=(40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_rgb(tmp_path / "rotated.jpg").size == (20, 40)


def test_fingerprint_follows_content_not_timestamps(tiny_data, tmp_path, cache_dir):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_data, copy)
    first = scan(copy, cache_dir).fingerprint
    assert scan(tiny_data, cache_dir).fingerprint == first, "a copy is the same dataset"
    some = next((copy / "Bag").iterdir())
    os.utime(some, (1, 1))
    assert scan(copy, cache_dir).fingerprint == first
    _photo().save(some)  # new content under the same name
    assert scan(copy, cache_dir).fingerprint != first


def test_rescan_uses_the_cached_verdicts(tiny_data, cache_dir, monkeypatch):
    scan(tiny_data, cache_dir)
    import core.data.datasets

    def fail(path):
        raise AssertionError(f"{path} was decoded again")

    monkeypatch.setattr(core.data.datasets, "_check", fail)
    assert len(scan(tiny_data, cache_dir)) == 36


def test_missing_path_is_a_one_line_error(tmp_path, cache_dir):
    with pytest.raises(UserError, match="data folder not found: .*nope"):
        scan(tmp_path / "nope", cache_dir)


def test_a_file_is_not_a_dataset(tmp_path, cache_dir):
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="not a folder"):
        scan(tmp_path / "file.png", cache_dir)


def test_one_class_is_not_enough(tmp_path, cache_dir):
    (tmp_path / "only").mkdir()
    _photo().save(tmp_path / "only" / "a.png")
    with pytest.raises(UserError, match="1 class folder.*at least 2"):
        scan(tmp_path, cache_dir)


def test_folder_stamp_changes_when_images_come_or_go(tiny_data, tmp_path):
    from core.data.datasets import folder_stamp

    copy = tmp_path / "copy"
    shutil.copytree(tiny_data, copy)
    before = folder_stamp(copy)
    time.sleep(0.01)
    _photo().save(copy / "Bag" / "new.png")
    assert folder_stamp(copy) > before
    assert folder_stamp(tmp_path / "gone") == 0


def test_links_that_lead_nowhere_or_in_circles_are_reported(tiny_data, tmp_path, cache_dir):
    data = tmp_path / "linked"
    shutil.copytree(tiny_data, data)
    (data / "Bag" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (data / "Bag" / "loop").symlink_to(data / "Bag")
    dataset = scan(data, cache_dir)
    reasons = dict(dataset.unreadable)
    assert reasons["Bag/gone.png"] == "broken link: its target is missing"
    assert reasons["Bag/loop"].startswith("link loop")
    assert dataset.counts()["Bag"] == 12, "the loop is not walked again"


def test_unreadable_files_get_reasons_a_person_can_act_on(tmp_path, cache_dir):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _photo().save(tmp_path / name / "ok.png")
    (tmp_path / "a" / "text.jpg").write_text("hello, not a picture")
    good = (tmp_path / "a" / "ok.png").read_bytes()
    (tmp_path / "b" / "cut.png").write_bytes(good[: len(good) // 2])
    Image.new("L", (10_000, 10_000)).save(tmp_path / "b" / "huge.png")
    reasons = dict(scan(tmp_path, cache_dir).unreadable)
    assert reasons["a/text.jpg"] == "not an image this tool can read (unknown format, or a damaged header)"
    assert "object at 0x" not in " ".join(reasons.values())
    assert reasons["b/cut.png"].startswith(("truncated", "damaged image data"))
    assert reasons["b/huge.png"].startswith("too large to decode safely (100 megapixels; the limit is 89")
    assert "HMD_MAX_PIXELS" in reasons["b/huge.png"]
