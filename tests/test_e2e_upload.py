"""Your images in, your model out, in Chromium: upload a zip of 2,000 images built here and a zip
of unlabelled images as its pool, train a 3/class run on it, score it on a second folder, export
it as ONNX, download it, and run the downloaded file in onnxruntime against the run's own
predictions."""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.base.paths import DEFAULT_DATA, read_json
from core.serving import jobs
from core.store import runs
from tests.browser import browser_page, need_chromium, screenshot, serve, technical_names, wait_rendered

pytestmark = pytest.mark.browser
CLASSES = ("Bag", "Coat", "Sandal", "Trouser")


def build_zip(target: Path) -> Path:
    """2,000 real images, 500 per class, under one top folder as a user's zip usually is."""
    with zipfile.ZipFile(target, "w") as archive:
        for name in CLASSES:
            for path in sorted((DEFAULT_DATA / name).iterdir())[:500]:
                archive.write(path, f"shop/{name}/{path.name}")
    return target


def second_folder(target: Path) -> Path:
    """Other images of three of the classes: a harder test set stands in for a new shop."""
    for name in CLASSES[:3]:
        (target / name).mkdir(parents=True)
        for path in sorted((DEFAULT_DATA / name).iterdir())[-20:]:
            shutil.copy(path, target / name / path.name)
    return target


def pool_zip(target: Path) -> Path:
    """Six images nobody labelled, loose and in nested folders, as a camera would leave them."""
    with zipfile.ZipFile(target, "w") as archive:
        for n, name in enumerate(("Dress", "Shirt", "Sneaker")):  # not in the shop's zip
            for path in sorted((DEFAULT_DATA / name).iterdir())[:2]:
                archive.write(path, f"day {n}/cam/{path.name}" if n else path.name)
    return target


def test_upload_train_score_export_and_reload(cache_dir, tmp_path):
    need_chromium()
    archive, other = build_zip(tmp_path / "shop.zip"), second_folder(tmp_path / "second")
    pool = pool_zip(tmp_path / "unlabelled.zip")
    uploads = tmp_path / "uploads"
    with serve(cache_dir, uploads=uploads) as url, browser_page() as page:
        page.goto(f"{url}/Data", wait_until="domcontentloaded")
        page.get_by_text("upload your own").wait_for(timeout=60_000)
        page.get_by_text("upload your own").click()
        page.get_by_label("Dataset name").fill("shop")
        page.get_by_label("Dataset name").press("Enter")
        wait_rendered(page)  # the name's rerun would drop a file given to the uploader meanwhile
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(archive))
        page.get_by_text("shop.zip").wait_for(timeout=60_000)
        page.get_by_role("button", name="Import").click()
        page.get_by_text(re.compile(r"Imported 2,000 images into shop")).wait_for(timeout=120_000)
        page.get_by_text("readable images in 4 classes").wait_for(timeout=120_000)
        wait_rendered(page)
        screenshot(page, "12-data-uploaded")
        assert sorted(p.name for p in (uploads / "shop").iterdir()) == list(CLASSES)

        # the shop's unlabelled images, as a zip in any layout: the pool the Next batch page ranks
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(pool))
        page.get_by_text("unlabelled.zip").wait_for(timeout=60_000)
        page.get_by_role("button", name="Import the pool").click()
        pool_folder = uploads / ".pools" / "unlabelled"
        page.get_by_text(f"Imported 6 images into {pool_folder}.").wait_for(timeout=60_000)
        page.get_by_text(f"In use: {pool_folder}").wait_for(timeout=10_000)
        wait_rendered(page)
        screenshot(page, "12-data-pool")
        assert read_json(cache_dir / "ui.json")["pools"] == {str(uploads / "shop"): str(pool_folder)}

        page.goto(f"{url}/Train", wait_until="domcontentloaded")
        page.get_by_text(str(uploads / "shop")).first.wait_for(timeout=60_000)
        page.get_by_text("Hyper-parameters").click()
        page.get_by_label("Epochs", exact=True).fill("3")
        page.get_by_label("Image size (px)", exact=True).fill("64")
        page.get_by_role("button", name="Launch").click()
        page.get_by_text("4 runs queued").wait_for(timeout=120_000)  # 1/class, 3/class, 5%, 20%
        deadline = time.monotonic() + 300
        while len(runs.list_runs(cache_dir)) < 4:
            assert time.monotonic() < deadline, "the runs did not finish"
            time.sleep(0.5)
        run = next(s for s in runs.list_runs(cache_dir) if s.config.slice == "3/class")
        assert run.n_train == 12

        page.goto(f"{url}/Run", wait_until="domcontentloaded")
        page.get_by_text("On a second, harder test set").wait_for(timeout=60_000)
        wait_rendered(page)
        technical_names(page)  # runs by their ids
        page.get_by_role("combobox", name="Run").click()
        page.keyboard.type(run.run_id)
        page.get_by_role("option", name=re.compile(run.run_id)).click()
        wait_rendered(page)
        page.get_by_role("combobox", name="A labelled folder (class folders matched by name)").click()
        page.get_by_role("option", name="another folder…").click()
        page.get_by_label("Folder path").fill(str(other))
        page.get_by_label("Folder path").press("Enter")
        wait_rendered(page)
        page.get_by_role("button", name="Score this run").click()
        page.get_by_text("Its mistakes are on the Grad-CAM page").wait_for(timeout=120_000)
        wait_rendered(page)

        page.get_by_role("button", name="Export this run as onnx and verify it").click()
        page.get_by_text(re.compile(r"model.onnx: verified on \d+ holdout images")).wait_for(timeout=180_000)
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="Download model.onnx").click()
        saved = tmp_path / "downloaded.onnx"
        download.value.save_as(saved)
        wait_rendered(page)
        screenshot(page, "13-run-exported")

    import onnxruntime

    session = onnxruntime.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
    loaded = runs.load(cache_dir, run.run_id)
    predictions = loaded.predictions()
    pixels = loaded.images()[predictions.image_index].transpose(0, 3, 1, 2).astype(np.float32) / 255
    logits = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert (probs.argmax(1) == predictions.probs.argmax(1)).all()
    assert np.abs(probs - predictions.probs).max() < 1e-4
    assert {j.state for j in jobs.list_jobs(cache_dir)} == {"complete"}
