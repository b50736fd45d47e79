"""A run scored on a second labelled folder: classes matched by name, unknown ones reported,
the result cached beside the run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from core.answers import testsets
from core.base.errors import UserError
from core.engine.pipeline import train_run
from tests.quick import quick_run

pytestmark = pytest.mark.train


def test_a_second_folder_is_scored_by_class_name_and_unknown_classes_are_named(
    tiny_data, other_data, shared_cache, tmp_path
):
    rid = train_run(quick_run(tiny_data), shared_cache).summary.run_id
    harder = tmp_path / "harder"
    shutil.copytree(other_data, harder)
    (harder / "Cat").mkdir()
    for i in range(3):
        Image.new("RGB", (28, 28), (40 * i, 0, 0)).save(harder / "Cat" / f"{i}.png")
    result = testsets.score(shared_cache, rid, harder)
    assert result.unknown == {"Cat": 3} and result.scores.n == 24, "the 24 known images scored, 3 named"
    predictions = testsets.predictions(shared_cache, result)
    known = sorted(f"{p.parent.name}/{p.name}" for p in harder.rglob("*.png") if p.parent.name != "Cat")
    assert sorted(predictions.paths) == known, "every known image scored once, Cat's left out"
    truth = [predictions.classes.index(path.split("/")[0]) for path in predictions.paths]
    assert predictions.labels.tolist() == truth, "labelled by its folder's name"
    assert result.scores.accuracy == pytest.approx(np.mean(predictions.predicted == truth))
    again = testsets.score(shared_cache, rid, harder)
    # as JSON: a threshold no image passes has a NaN selective accuracy, and NaN != NaN
    assert json.dumps(again.to_dict()) == json.dumps(result.to_dict())
    assert [t.name for t in testsets.scored(shared_cache, rid)] == ["harder"]
    assert result.to_dict()["unknown_classes"] == {"Cat": 3}


def test_a_folder_of_only_other_classes_is_refused(tiny_data, shared_cache, tmp_path):
    rid = train_run(quick_run(tiny_data), shared_cache).summary.run_id
    for name in ("Cat", "Dog"):
        (tmp_path / "zoo" / name).mkdir(parents=True)
        Image.new("RGB", (28, 28)).save(tmp_path / "zoo" / name / "a.png")
    with pytest.raises(UserError, match="none of its classes \\(Cat, Dog\\) is among the run's"):
        testsets.score(shared_cache, rid, tmp_path / "zoo")
