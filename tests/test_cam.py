"""Grad-CAM overlays of a trained run: every method, frozen backbones, cached once."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core import runs
from core.cam import METHODS, misclassified, overlays
from core.errors import UserError
from core.pipeline import train_run


@pytest.fixture(scope="module")
def frozen_run(tiny_data, shared_cache) -> dict:
    return train_run(runs.RunConfig(data=str(tiny_data), backbone="efficientnet_lite0", mode="frozen",
                                    slice="1/class", image_size=64, epochs=3, seed=1), shared_cache)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_draws_an_overlay_on_a_frozen_backbone(frozen_run, shared_cache, method):
    predictions = runs.load_predictions(runs.find_run(shared_cache, frozen_run["run_id"]))
    image = int(predictions.image_index[0])
    heard = []
    paths = overlays(shared_cache, frozen_run["run_id"], [(image, 0), (image, 1), (image, 0)],
                     method, on_progress=lambda done, total: heard.append((done, total)))
    assert heard[0] == (0, 2) and heard[-1] == (2, 2), "a pair asked twice is computed once"
    assert paths[0] == paths[2]
    pictures = [np.asarray(Image.open(p)) for p in paths]
    assert all(p.shape == (64, 64, 3) for p in pictures)
    assert all(p.std() > 1 for p in pictures), "an overlay is not a flat colour"


def test_predicted_and_true_class_maps_differ_and_are_cached(frozen_run, shared_cache):
    rid = frozen_run["run_id"]
    predictions = runs.load_predictions(runs.find_run(shared_cache, rid))
    image = int(predictions.image_index[0])
    first = overlays(shared_cache, rid, [(image, 0), (image, 2)], "gradcam++")
    assert Image.open(first[0]).tobytes() != Image.open(first[1]).tobytes()
    stamps = [p.stat().st_mtime_ns for p in first]
    heard = []
    again = overlays(shared_cache, rid, [(image, 0), (image, 2)], "gradcam++",
                     on_progress=lambda done, total: heard.append(done))
    assert [p.stat().st_mtime_ns for p in again] == stamps and heard == []


def test_misclassified_are_sorted_most_confidently_wrong_first(frozen_run, shared_cache):
    wrong = misclassified(shared_cache, frozen_run["run_id"])
    assert (wrong.true != wrong.pred).all()
    assert list(wrong.p_true) == sorted(wrong.p_true)


def test_unknown_method_and_deleted_run(frozen_run, shared_cache):
    with pytest.raises(UserError, match="unknown CAM method 'magic'"):
        overlays(shared_cache, frozen_run["run_id"], [(0, 0)], "magic")
    with pytest.raises(UserError, match="run 000000000000 has no complete results.*deleted"):
        overlays(shared_cache, "000000000000", [(0, 0)])


def test_a_run_that_lost_its_files_says_so(tiny_data, cache_dir):
    rid = train_run(runs.RunConfig(data=str(tiny_data), backbone="efficientnet_lite0", mode="frozen",
                                   slice="1/class", image_size=64, epochs=2), cache_dir)["run_id"]
    (runs.find_run(cache_dir, rid) / "weights.pt").unlink()
    with pytest.raises(UserError, match=f"run {rid} has lost its weights.pt"):
        overlays(cache_dir, rid, [(0, 0)])
    (runs.find_run(cache_dir, rid) / "predictions.csv").unlink()
    with pytest.raises(UserError, match=f"run {rid} has lost its predictions.csv"):
        misclassified(cache_dir, rid)
