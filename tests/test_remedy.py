"""When the learning curve gives no answer, the Learning curve page says what would give one and
offers the runs that do it (it once stopped at "no curve to fit", with no way forward)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget, remedy
from core.base.locks import try_lock
from core.base.paths import PROJECT_ROOT, write_json
from core.base.words import counted
from core.serving import jobs
from core.store.config import Split
from tests.command import core

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def small_holdout(tiny_data, tmp_path_factory) -> Path:
    """Four slices of the tiny set, whose holdout is 3 images: no curve can be fitted."""
    cache = tmp_path_factory.mktemp("small-holdout")
    slices = "1/class,2/class,5/class,100%"
    done = core(
        cache, "sweep", "--slices", slices, "--seeds", "1", "--data", str(tiny_data), "--image-size", "64"
    )
    assert done.returncode == 0, done.stderr
    return cache


def test_a_curve_lost_in_a_small_holdouts_noise_is_offered_a_larger_holdout(small_holdout, tiny_data):
    analysis = budget.analyse(budget.select(small_holdout, tiny_data))
    assert isinstance(analysis.fitted, str), "the precondition: 3 holdout images fit no curve"
    step = remedy.next_step(analysis)
    accuracy = analysis.points[-1].accuracy
    adjusted = (3 * accuracy + 2) / 7  # two right and two wrong added (Agresti-Coull)
    now = 2 * math.sqrt(adjusted * (1 - adjusted) / 3)
    assert f"rests on 3 holdout images, so it is uncertain by about ±{now:.0%}" in step.sentence
    assert step.split == Split(0.3, 0.1, 0)
    grid = budget.curve_grid(step.configs[0], small_holdout)
    assert step.configs == tuple(grid) and {c.holdout for c in step.configs} == {0.3}
    assert step.button.endswith(f"({len(grid)} runs)")


def test_a_fitted_curve_needs_no_next_step(curve_cache, curve_data):
    assert remedy.next_step(budget.analyse(budget.select(curve_cache, curve_data))) is None


def test_the_learning_curve_page_queues_the_larger_holdout_and_follows_it(
    small_holdout, tiny_data, tmp_path, monkeypatch
):
    import shutil

    cache = shutil.copytree(small_holdout, tmp_path / "cache")
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(tiny_data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180).run()
    app.switch_page("pages/6_Learning_curve.py").run()
    assert not app.exception
    assert any("Holding out 30% of each class" in i.value for i in app.info)
    button = app.button(key="curve_next_step")
    assert button.label.startswith("Measure the learning curve on a 30% holdout")
    with try_lock(cache / "jobs" / "worker.lock"):  # as if a worker were busy: nothing trains here
        button.click().run()
    assert not app.exception
    queued = [j for j in jobs.list_jobs(cache) if j.state == "queued"]
    assert queued and {j.config.holdout for j in queued} == {0.3}
    assert counted(len(queued), "run") + " queued" in app.success[0].value
    assert json.loads((cache / "ui.json").read_text())["split"] == [0.3, 0.1, 0]


def test_no_fitted_curve_means_no_interval_is_claimed_for_it(
    small_holdout, tiny_data, curve_cache, curve_data
):
    """The Learning curve page, the report and the Present step name only what their chart draws."""
    from core.present import story

    flat = budget.report(budget.analyse(budget.select(small_holdout, tiny_data)), 0.9)
    assert flat.band == () and flat.needed.estimate is None
    told = budget.intervals_explained(flat.band, flat.level)
    assert told.startswith("No curve could be fitted to these slices, so no 80% interval is drawn")
    caption = story.tell(small_holdout, tiny_data, target=0.9).curve_caption
    assert "No curve could be fitted through them" in caption and "Orange" not in caption
    assert "Green" not in caption
    fitted = story.tell(curve_cache, curve_data)
    assert "Orange: the curve fitted through them, with its range." in fitted.curve_caption
    explained = budget.intervals_explained(((1.0, None),), 0.8)
    assert (
        explained.startswith("The dashed line is the power law")
        and "Intervals are 80% intervals" in explained
    )


def test_a_perfect_score_on_a_few_holdout_images_is_not_called_certain():
    # 3 holdout images, all right: the plain binomial formula gave "uncertain by about ±0%"
    assert remedy.holdout_noise(1.0, 3) > 0.4
    assert remedy.holdout_noise(0.8, 30) == pytest.approx(0.155, abs=0.001)
