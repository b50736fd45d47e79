"""The Present page (issue 24, part 3): six steps for a room, each from the same core function as
the page or report that shows it, Next and Previous that stop at the ends, a link that opens a
chosen dataset, experiment and step, one plain line where a step has nothing, and nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget, rounds
from core.answers.cam import gallery, overlays, pair_overlays, showcase_run
from core.base.paths import PROJECT_ROOT, write_json
from core.present.story import NOT_MEASURED, STEPS
from tests.apptest import texts

pytestmark = pytest.mark.train
PAGE = "pages/14_Present.py"


@pytest.fixture(scope="module")
def told(curve_cache, curve_data, tmp_path_factory) -> Path:
    """The learning-curve cache with a few Grad-CAMs of the best model drawn, as the Grad-CAM
    page would have drawn them (the Present page only shows drawn ones)."""
    cache = tmp_path_factory.mktemp("present") / "cache"
    shutil.copytree(curve_cache, cache)
    best = showcase_run(budget.select(cache, curve_data).summaries)
    pair_overlays(cache, best.run_id, gallery(cache, best.run_id, "misclassified").head(2))
    right = gallery(cache, best.run_id, "correct").head(1)
    overlays(cache, best.run_id, [(int(r.image_index), int(r.label)) for r in right.itertuples()])
    return cache


def open_present(cache: Path, monkeypatch, data: Path | None, **link: str) -> AppTest:
    """Home, then the Present page with ``link`` as the address's query parameters."""
    monkeypatch.setenv("HMD_CACHE", str(cache))
    if data is not None:
        write_json(cache / "ui.json", {"dataset": str(data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180).run()
    app.query_params.update(link)
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def heading(app: AppTest) -> str:
    return app.header[0].value


def press(app: AppTest, key: str) -> None:
    app.button(key=key).click().run()
    assert not app.exception, app.exception


def listing(cache: Path) -> dict[str, int]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}


def test_every_step_from_the_engine_and_nothing_written(told, curve_data, monkeypatch):
    analysis = budget.analyse(budget.select(told, curve_data))
    top = analysis.points[-1].accuracy
    report = next(  # a target above what was measured that the curves answer, else one below
        r
        for r in (budget.report(analysis, round(top + d, 2)) for d in (0.01, 0.02, 0.03, -0.02))
        if r.needed.estimate and not r.contradicted  # an answer no measurement contradicts
    )
    target = report.target
    app = open_present(told, monkeypatch, curve_data, target=str(round(100 * target)))
    before = listing(told)
    seen = []
    for number, title in enumerate(STEPS, 1):
        assert heading(app) == title
        assert f"Step {number} of {len(STEPS)}" in texts(app)
        seen.append(texts(app))
        if number == 3:
            assert report.needed.estimate, report.needed.reason
            assert budget.stated(report.needed.estimate, report.level, ",.0f") in texts(app)
            assert f"{report.backtest.mean_abs_error * 100:.1f} percentage points" in texts(app)
        if number == 4:
            assert len(app.metric) == 3 and texts(app).count("95% interval") == 3
        if number == 5:
            captions = [caption for image in app.image for caption in image.captions]
            assert len(captions) == 3, texts(app)
            assert captions[0].startswith("Wrong: a ") and captions[-1].startswith("Right: a ")
        if number < len(STEPS):
            press(app, "present_next")
    if top >= target:
        assert f"None needed for {target:.0%}" in seen[-1]
    elif report.plateau:  # step 3 said more labels are unlikely to help: step 6 does not ask for them
        assert "No round of labels suggested" in seen[-1]
    else:  # the first round of the Next batch page's plan
        assert f"Label {rounds.plan(analysis, target).added()[0]:,} more images" in seen[-1]
    assert "not available" not in "\n".join(seen).lower()
    assert listing(told) == before  # no step wrote, moved or touched a file


def test_a_target_past_the_ceiling_names_the_fitted_curve_beside_what_was_measured(
    told, curve_data, monkeypatch
):
    """The ceiling is the fitted curve's: it can lie below the best slice measured, so the room
    hears both numbers (it once read "the measured curve flattens out at 89.1%" beside a 90.7%
    bar on the Holdout page)."""
    analysis = budget.analyse(budget.select(told, curve_data))
    report = budget.report(analysis, 0.99)
    assert not report.needed.estimate and report.needed.ceiling, "premise: 99% is past this curve's reach"
    app = open_present(told, monkeypatch, curve_data, target="99", step="3")
    last = analysis.points[-1]
    said = texts(app)
    assert f"levels off at about {report.needed.ceiling.estimate:.1%}" in said
    today = f"Today it has {last.images_per_class:,.0f} images per class and is right {last.accuracy:.1%}"
    assert f"{today} of the time (95% interval " in said  # a number from 1 holdout: its interval beside it
    assert "measured curve" not in said


def test_previous_and_next_stop_at_the_ends(told, curve_data, monkeypatch):
    app = open_present(told, monkeypatch, curve_data)
    assert heading(app) == STEPS[0] and app.button(key="present_previous").disabled
    for _ in STEPS[1:]:
        press(app, "present_next")
    assert heading(app) == STEPS[-1] and app.button(key="present_next").disabled
    press(app, "present_previous")
    assert heading(app) == STEPS[-2]
    assert app.query_params["step"] == str(len(STEPS) - 1)  # the address follows the steps


def test_a_link_opens_its_dataset_experiment_and_step(told, curve_data, tiny_data, monkeypatch):
    experiment = budget.select(told, curve_data).experiment
    app = open_present(told, monkeypatch, tiny_data, dataset=curve_data.name, experiment=experiment, step="3")
    assert heading(app) == "The answer" and f"Step 3 of {len(STEPS)}** · {curve_data.name}" in texts(app)
    assert app.query_params["experiment"] == experiment
    assert app.query_params["dataset"] == str(curve_data)
    assert (told / "ui.json").read_text().count(str(tiny_data)) == 1  # the saved choice is left alone


def test_an_unknown_link_says_so_and_shows_the_dataset_in_use(told, curve_data, monkeypatch):
    app = open_present(told, monkeypatch, curve_data, dataset="no-such-data", experiment="nothing", step="x")
    assert "No dataset called no-such-data here" in texts(app)
    assert "showing the default" in texts(app) and heading(app) == STEPS[0]


def test_the_looks_step_shows_the_mistakes_themselves_before_any_map_is_drawn(
    curve_cache, curve_data, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    shutil.copytree(curve_cache, cache)
    shutil.rmtree(cache / "cams", ignore_errors=True)  # as if no map had been drawn yet
    best = showcase_run(budget.select(cache, curve_data).summaries)
    wrong = gallery(cache, best.run_id, "misclassified").head(2)
    app = open_present(cache, monkeypatch, curve_data, step="5")
    captions = [caption for image in app.image for caption in image.captions]
    assert captions[: len(wrong)] == [
        f"Wrong: a {row.true} it called {row.pred} ({row.p_max:.0%} sure)" for row in wrong.itertuples()
    ], "the best model's first mistakes, as the Grad-CAM page lists them"
    assert len(captions) == 3 and captions[-1].startswith("Right: a ")
    assert "Where it looked is not drawn yet: the Grad-CAM page draws it" in texts(app)
    assert not (cache / "cams").exists(), "shown, not drawn: the page writes nothing"


def test_an_empty_cache_says_one_plain_line_a_step(tmp_path, curve_data, monkeypatch):
    app = open_present(tmp_path, monkeypatch, curve_data)
    for number, title in enumerate(STEPS, 1):
        assert heading(app) == title
        assert [i.value for i in app.info] == [NOT_MEASURED.format(name=curve_data.name)]
        if number < len(STEPS):
            press(app, "present_next")


@pytest.mark.browser
def test_a_room_walks_the_story_from_a_link_in_chromium(told, curve_data):
    """The direct link at step 1, Next through to the last step, each step's heading, and every
    step at laptop and desktop widths in tests/artifacts (present-<step>-<width>.png)."""
    from tests.browser import browser_page, need_chromium, screenshot, serve, visit, wait_rendered

    need_chromium()
    with serve(told) as url, browser_page() as page:
        visit(page, url, f"Present?dataset={curve_data.name}&step=1", STEPS[0])
        for number, title in enumerate(STEPS, 1):
            page.get_by_role("heading", name=title).wait_for(timeout=60_000)
            page.get_by_text(f"Step {number} of {len(STEPS)}").wait_for(timeout=60_000)
            wait_rendered(page)
            for width in (1280, 1920):
                page.set_viewport_size({"width": width, "height": 1000})
                wait_rendered(page)
                screenshot(page, f"present-{number}-{width}")
            if number < len(STEPS):
                page.get_by_role("button", name="Next →").click()
        assert page.get_by_role("button", name="Next →").is_disabled()
        assert "step=6" in page.url and "dataset=" in page.url  # the address is a link to this view


def test_the_handover_states_its_target_and_says_when_the_holdout_falls_short_of_it():
    from core.base.intervals import Estimate
    from core.present.story import Handover

    def said(accuracy: Estimate) -> str:
        return Handover(80, 30, 0.58, Estimate(0.7, 0.5, 0.85), Estimate(0.3, 0.15, 0.5), accuracy).words(0.9)

    met = said(Estimate(0.92, 0.8, 0.98))
    assert met.startswith(
        "Asked to be right 90% of the time on what it decides alone, the model trained on the most labels"
    )
    assert "right on 92% of them. A person checks the other 30%." in met
    assert "right on 89% of them, below the 90% asked for, though its 95% interval reaches it." in said(
        Estimate(0.89, 0.67, 0.97)
    )
    assert "right on 75% of them, below the 90% asked for even at the top of its 95% interval." in said(
        Estimate(0.75, 0.6, 0.85)
    )


def test_the_trust_sentence_says_when_the_holdout_falls_short_of_the_accuracy_wanted():
    """The Trust page once showed 89% under "95% wanted" without a word: the shortfall is said
    in the same words as the Present handover."""
    from core.answers.calibration import ThresholdPlan
    from core.base.intervals import Estimate

    def said(accuracy: Estimate) -> str:
        plan = ThresholdPlan(
            0.95, 0.76, accuracy, Estimate(0.6, 0.42, 0.75), Estimate(0.4, 0.25, 0.58), 0.96, 0.55, None
        )
        return plan.holdout_words(30)

    assert said(Estimate(0.96, 0.83, 0.99)) == (
        "On the 30 holdout images, the model would decide 60% of them alone (95% interval 42% to 75%) and be "
        "right on 96% of those (95% interval 83% to 99%); a person would check the other 40%."
    )
    assert "(95% interval 67% to 97%), below the 95% asked for, though its 95% interval reaches it;" in said(
        Estimate(0.89, 0.67, 0.97)
    )
    assert "(95% interval 55% to 85%), below the 95% asked for even at the top of its 95% interval;" in said(
        Estimate(0.7, 0.55, 0.85)
    )
    none = ThresholdPlan(0.99, None, None, None, None, None, None, "no confidence reaches 99% on validation")
    assert none.holdout_words(30) == (
        "At 99% accuracy, nothing can be left to the model alone: no confidence reaches 99% on validation."
    )


def test_a_plateau_on_the_curve_step_means_no_round_of_labels_on_the_last(told, curve_data):
    """A room heard "more labels of the same kind are unlikely to help" on step 3 and "label 240
    more images, chance 100%" on step 6: with a plateau, the last step suggests no round."""
    from core.answers.budget import Plateau
    from core.present.story import next_round

    analysis = budget.analyse(budget.select(told, curve_data))
    target = min(0.99, analysis.points[-1].accuracy + 0.05)
    flat = Plateau(20, analysis.points[-1].accuracy, "flat since 20")
    said = next_round(analysis, target, flat)
    assert isinstance(said, str) and said.startswith("No round of labels suggested"), said
    assert "since about 20 images per class" in said
    assert not isinstance(next_round(analysis, target), str), "without a plateau, the plan's first round"
