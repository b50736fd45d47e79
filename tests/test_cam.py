"""Grad-CAM overlays of a trained run: every method, frozen backbones, cached once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from core.answers.cam import METHODS, gallery, overlays, pair_overlays
from core.base.errors import RunDamaged, UserError
from core.base.paths import PROJECT_ROOT
from core.engine.pipeline import train_run
from core.store import runs
from tests.quick import quick_run

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def frozen_run(tiny_data, shared_cache) -> str:
    request = quick_run(tiny_data, epochs=3)
    return train_run(request, shared_cache).summary.run_id


@pytest.mark.parametrize("method", METHODS)
def test_every_method_draws_an_overlay_on_a_frozen_backbone(frozen_run, shared_cache, method):
    image = int(runs.load(shared_cache, frozen_run).predictions().image_index[0])
    heard = []
    paths = overlays(
        shared_cache,
        frozen_run,
        [(image, 0), (image, 1), (image, 0)],
        method,
        on_progress=lambda done, total: heard.append((done, total)),
    )
    assert heard[0] == (0, 2) and heard[-1] == (2, 2), "a pair asked twice is computed once"
    assert paths[0] == paths[2]
    pictures = [np.asarray(Image.open(p)) for p in paths]
    assert all(p.shape == (64, 64, 3) for p in pictures)
    assert all(p.std() > 1 for p in pictures), "an overlay is not a flat colour"


def test_predicted_and_true_class_maps_differ_and_are_cached(frozen_run, shared_cache):
    image = int(runs.load(shared_cache, frozen_run).predictions().image_index[0])
    first = overlays(shared_cache, frozen_run, [(image, 0), (image, 2)], "gradcam++")
    assert Image.open(first[0]).tobytes() != Image.open(first[1]).tobytes()
    stamps = [p.stat().st_mtime_ns for p in first]
    heard = []
    again = overlays(
        shared_cache,
        frozen_run,
        [(image, 0), (image, 2)],
        "gradcam++",
        on_progress=lambda done, total: heard.append(done),
    )
    assert [p.stat().st_mtime_ns for p in again] == stamps and heard == []


def test_pairs_are_the_predicted_then_the_true_class(frozen_run, shared_cache):
    rows = gallery(shared_cache, frozen_run, "all")
    pairs = pair_overlays(shared_cache, frozen_run, rows, "gradcam")
    classes = runs.load(shared_cache, frozen_run).summary.classes
    for row, (predicted, true) in zip(rows.itertuples(), pairs, strict=True):
        assert predicted.name == f"{row.image_index}-{classes.index(row.pred)}.png"
        assert true.name == f"{row.image_index}-{row.label}.png"


def test_misclassified_are_sorted_most_confidently_wrong_first(frozen_run, shared_cache):
    wrong = gallery(shared_cache, frozen_run, "misclassified")
    assert (wrong.true != wrong.pred).all()
    assert list(wrong.p_true) == sorted(wrong.p_true)


def test_unknown_method_and_deleted_run(frozen_run, shared_cache):
    with pytest.raises(UserError, match="unknown CAM method 'magic'"):
        overlays(shared_cache, frozen_run, [(0, 0)], "magic")
    with pytest.raises(UserError, match="run 000000000000 has no complete results.*deleted"):
        overlays(shared_cache, "000000000000", [(0, 0)])


def test_a_run_that_lost_its_files_says_so(tiny_data, cache_dir):
    request = quick_run(tiny_data)
    rid = train_run(request, cache_dir).summary.run_id
    runs.load(cache_dir, rid).folder.weights.unlink()
    with pytest.raises(RunDamaged, match=f"run {rid} is damaged: weights.pt is missing"):
        overlays(cache_dir, rid, [(0, 0)])


def test_a_run_loaded_for_inference_leaves_lightning_unimported(frozen_run, shared_cache):
    """The CAM worker, the Predict page and pool scoring load runs as plain torch networks: a
    process that only infers does not pay Lightning's import (about 1.8 s of CPU here)."""
    script = (
        "import sys; from pathlib import Path; from core.store import runs; "
        f"model = runs.load(Path({str(shared_cache)!r}), {frozen_run!r}).model(); "
        "print(type(model).__name__, sorted(m for m in ('lightning', 'torchmetrics') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Network", "[]"]
