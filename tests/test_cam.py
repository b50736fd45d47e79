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
    paths = overlays(shared_cache, frozen_run["run_id"], [(image, 0), (image, 1)], method)
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
    assert [p.stat().st_mtime_ns for p in overlays(shared_cache, rid, [(image, 0), (image, 2)],
                                                  "gradcam++")] == stamps


def test_misclassified_are_sorted_most_confidently_wrong_first(frozen_run, shared_cache):
    wrong = misclassified(shared_cache, frozen_run["run_id"])
    assert (wrong.true != wrong.pred).all()
    assert list(wrong.p_true) == sorted(wrong.p_true)


def test_unknown_method_and_deleted_run(frozen_run, shared_cache):
    with pytest.raises(UserError, match="unknown CAM method 'magic'"):
        overlays(shared_cache, frozen_run["run_id"], [(0, 0)], "magic")
    with pytest.raises(UserError, match="run 000000000000 has no complete results.*deleted"):
        overlays(shared_cache, "000000000000", [(0, 0)])
