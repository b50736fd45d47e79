"""Can I trust it, end to end on real runs: the calibration and threshold commands' contract, and
the Trust page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget
from core.base.paths import PROJECT_ROOT, write_json
from core.store import runs
from tests.command import core
from tests.quick import until_drawn

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def largest(curve_cache, curve_data) -> str:
    """The run of the largest slice, first sample seed."""
    selection = budget.select(curve_cache, curve_data)
    return max(selection.summaries, key=lambda s: (s.n_train, -s.config.sample_seed)).run_id


def test_calibration_json_carries_the_contract(curve_cache, largest):
    done = core(curve_cache, "calibration", "--run", largest, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("ece", "ece_scaled"):
        assert set(result[key]) == {"estimate", "low", "high"}
        assert result[key]["low"] <= result[key]["estimate"] <= result[key]["high"]
    assert result["temperature"] > 0
    assert result["accuracy"] == result["accuracy_scaled"] == runs.load(curve_cache, largest).summary.accuracy
    assert sum(b["count"] for b in result["bins"]) == result["n"] == 60
    assert all({"confidence", "accuracy", "count"} <= set(b) and b["count"] > 0 for b in result["bins"])
    assert result["val_nll_scaled"] <= result["val_nll"] + 1e-9, "T is fitted to lower validation NLL"
    assert "ECE" in core(curve_cache, "calibration", "--run", largest).stdout


def test_threshold_json_carries_the_contract(curve_cache, largest):
    done = core(curve_cache, "threshold", "--run", largest, "--target", "0.6", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert {"threshold", "kept_accuracy", "automated_share", "human_share"} <= set(plan)
    if plan["threshold"] is None:
        assert plan["reason"]
    else:
        a, h = plan["automated_share"], plan["human_share"]
        assert a["estimate"] + h["estimate"] == pytest.approx(1)
        assert a["low"] <= a["estimate"] <= a["high"]
        assert plan["val_kept_accuracy"] >= 0.6, "chosen on validation to meet the target there"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["threshold", "--run", "RID", "--target", "1.2"],
            "error: --target must be between 0 and 1, not 1.2",
        ),
        (["calibration", "--run", "feedfacecafe"], "error: run feedfacecafe has no complete results"),
        (["calibration", "--run", "RID", "--bins", "0"], "error: --bins must be at least 1, not 0"),
    ],
)
def test_trust_bad_input_is_one_line_and_exit_2(curve_cache, largest, args, message):
    done = core(curve_cache, *[largest if a == "RID" else a for a in args])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1


def test_trust_page_shows_calibration_threshold_and_growth(curve_cache, curve_data, tmp_path, monkeypatch):
    cache = tmp_path / "trust"
    shutil.copytree(curve_cache, cache)
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300).run()
    app.switch_page("pages/9_Trust.py").run()
    assert not app.exception, app.exception
    assert [m.label for m in app.metric][:2] == [
        "Calibration error as trained",
        "Calibration error after rescaling",
    ]
    assert len(app.get("plotly_chart")) == 2, "the reliability diagram and the growth with labels"
    app.number_input(key="trust_target").set_value(60.0).run()
    assert not app.exception
    text = " ".join(str(e.value) for e in [*app.caption, *app.warning])
    assert "chosen on the validation set" in text or "No threshold" in text


def test_calibration_of_a_run_committed_before_validation_files_is_computed(curve_cache, largest, tmp_path):
    """Older runs have no validation.csv: their validation probabilities are rebuilt from the model."""
    cache = tmp_path / "old"
    shutil.copytree(curve_cache, cache)
    folder = runs.complete_dir(cache, largest)
    recorded = runs.load(cache, largest).validation()
    folder.validation.unlink()
    manifest = json.loads(folder.manifest.read_text())
    manifest.pop("validation.csv")
    Path(folder.manifest).write_text(json.dumps(manifest))
    from core.engine.pipeline import validation_of

    rebuilt = validation_of(runs.load(cache, largest))
    assert (rebuilt.image_index == recorded.image_index).all()
    assert abs(rebuilt.probs - recorded.probs).max() < 1e-5


def test_cams_across_slices_show_one_image_as_labels_grow(curve_cache, largest, tmp_path):
    from PIL import Image

    from core.answers.cam import across_slices, animation

    cache = tmp_path / "cams"
    shutil.copytree(curve_cache, cache)
    summary = runs.load(cache, largest).summary
    image = int(runs.load(cache, largest).predictions().image_index[0])
    frames = across_slices(cache, budget.siblings(cache, summary), image)
    assert [f.slice for f in frames] == [*(f"{n}/class" for n in (1, 2, 3, 5, 8, 13, 20, 30, 50, 80)), "100%"]
    assert len({f.true for f in frames}) == 1 and all(f.overlay.exists() for f in frames)
    gif = Image.open(__import__("io").BytesIO(animation(frames)))
    assert gif.format == "GIF" and gif.n_frames == len(frames)


def test_grad_cam_page_shows_one_image_as_labels_grow(curve_cache, curve_data, tmp_path, monkeypatch):
    cache = tmp_path / "page"
    shutil.copytree(curve_cache, cache)
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300).run()
    app.switch_page("pages/5_Grad-CAM.py").run()
    app.radio(key="cam_view").set_value("one image as labels grow").run()
    assert app.get("progress"), "drawn in the background, with a progress bar"
    until_drawn(app)
    assert not app.exception, app.exception
    assert len(app.get("image")) == 11 + 2, "a CAM per slice, the animation and the colour scale"
