"""The Next batch page with Streamlit's AppTest on a copy of the learning-curve cache: the round
plan's numbers are the plan's, the backtest started from the page runs in a process of its own
and the page then shows its verdict, and Cancel stops that process within seconds."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget, rounds
from core.answers.nextbatch.simulate import Settings
from core.answers.nextbatch.strategies import DEFAULT
from core.base.paths import DEFAULT_DATA, read_json, write_json
from core.data import upload
from core.data.datasets import scan
from core.serving import rankings, simulations
from tests.apptest import open_page, texts
from tests.browser import browser_page, need_chromium, screenshot, serve, visit, wait_rendered
from tests.conftest import CURVE_CLASSES

pytestmark = pytest.mark.train
PAGE = "pages/13_Next_batch.py"


@pytest.fixture
def cache(curve_cache, tmp_path) -> Path:
    """A copy of the shared curve cache (the page writes to it); every backtest a test started
    is stopped when it ends, passed or failed, so that no process is left behind."""
    copy = tmp_path / "cache"
    shutil.copytree(curve_cache, copy)
    yield copy
    for record in (copy / "nextbatch").glob("*.request.json"):
        simulations.cancel(copy, record.name.removesuffix(".request.json"))
    for record in (copy / rankings.FOLDER).glob("*.request.json"):
        rankings.cancel(copy, record.name.removesuffix(".request.json"))


def tiny_backtest(app: AppTest, strategies: list[str], rounds_: int, seeds: str) -> None:
    app.multiselect(key="nb_strategies").set_value(strategies)
    app.number_input(key="nb_batch").set_value(5)
    app.number_input(key="nb_rounds").set_value(rounds_)
    app.text_input(key="nb_seeds").set_value(seeds).run()
    assert not app.exception, app.exception
    app.button(key="nb_run").click().run()
    assert not app.exception, app.exception


def only_request(cache: Path) -> tuple[str, int]:
    (record,) = (cache / "nextbatch").glob("*.request.json")
    return record.name.removesuffix(".request.json"), read_json(record)["pid"]


def test_the_plan_table_shows_the_round_plan(cache, curve_data, monkeypatch):
    app = open_page(cache, "pages/13_Next_batch.py", monkeypatch, curve_data)
    analysis = budget.analyse(budget.select(cache, curve_data))
    default = app.number_input(key="nb_target").value
    assert default == 100 * analysis.suggested_target(), "the Learning curve page's default target"
    app.number_input(key="nb_target").set_value(90.0)
    app.number_input(key="nb_step").set_value(20).run()
    assert not app.exception, app.exception
    expected = rounds.plan(analysis, 0.9, 20)
    table = next(d.value for d in app.dataframe if "per class, in all" in d.value.columns)
    assert list(table["per class, in all"]) == [r.cumulative_per_class for r in expected.rounds]
    assert set(table["this round, all classes"]) == {20 * 4}
    assert list(table["predicted accuracy"]) == [f"{r.accuracy.estimate:.1%}" for r in expected.rounds]
    assert list(table["interval"]) == [
        f"{r.accuracy.low:.1%} to {r.accuracy.high:.1%}" for r in expected.rounds
    ]
    assert list(table["chance of the target"]) == [f"{r.p_reached:.0%}" for r in expected.rounds]
    assert expected.assumptions.rule in texts(app)


def test_the_backtest_runs_apart_and_the_page_shows_its_verdict(cache, curve_data, monkeypatch):
    app = open_page(cache, "pages/13_Next_batch.py", monkeypatch, curve_data)
    tiny_backtest(app, ["random", "hybrid"], 1, "1,2")
    key, _ = only_request(cache)
    deadline = time.monotonic() + 180
    while (found := simulations.status(cache, key)).running and time.monotonic() < deadline:
        time.sleep(0.5)
    assert found.finished and found.error is None and found.result is not None, found
    app.run()
    assert not app.exception, app.exception
    stored = read_json(found.result)  # what the command printed
    verdict = simulations.load(found).verdict()
    assert verdict == stored["verdict"]
    assert f"**{verdict}**" in [m.value for m in app.markdown]
    assert set(stored["strategies"]) == {"random", "hybrid"}
    table = next(d.value for d in app.dataframe if "strategy" in d.value.columns)
    assert list(table["strategy"]) == ["random", "hybrid"]
    last = stored["strategies"]["hybrid"]["rounds"][-1]
    assert table["accuracy after the last round"][1] == f"{last['accuracy']:.1%}"


def test_cancel_stops_the_backtest_process_and_says_so(cache, curve_data, monkeypatch):
    app = open_page(cache, "pages/13_Next_batch.py", monkeypatch, curve_data)
    tiny_backtest(app, ["random", "uncertainty", "diversity", "typical", "hybrid"], 6, "1,2,3")
    key, pid = only_request(cache)
    assert simulations.status(cache, key).running
    app.button(key="nb_cancel").click().run()
    assert not app.exception, app.exception
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the backtest's process {pid} still runs 5 s after Cancel")
    assert simulations.status(cache, key).cancelled
    assert "Stopped: the backtest was cancelled" in texts(app)


def test_a_backtest_that_cannot_run_ends_with_the_command_s_own_reason(cache, curve_data):
    settings = Settings(("random",), 1, 1000, 1, (1,))
    request = simulations.Request(
        str(curve_data),
        scan(curve_data, cache).fingerprint,
        settings,
        "efficientnet_lite0",
        64,
        (0.1, 0.1, 0),
    )
    key = simulations.start(cache, request)
    deadline = time.monotonic() + 120
    while (found := simulations.status(cache, key)).running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found.finished and found.result is None
    assert found.error.startswith("the simulation labels 1 + 1 x 1000 images per class"), found.error


def _pool(folder: Path, curve_data: Path) -> Path:
    """Two new images of each curve class and a copy of one the curve set already has."""
    folder.mkdir()
    for name in CURVE_CLASSES:  # images the curve set does not have (it holds the first 150)
        for path in sorted((DEFAULT_DATA / name).iterdir())[200:202]:
            shutil.copy(path, folder / f"{name}-{path.name}")
    shutil.copy(sorted((curve_data / "Coat").iterdir())[0], folder / "again.png")
    return folder


def _choose(app: AppTest, cache: Path, pool: Path, size: int) -> str:
    """Ask the page for a batch: the pool's ranking starts in a process of its own."""
    app.text_input(key="nb_pool").set_value(str(pool))
    app.number_input(key="nb_size").set_value(size).run()
    app.button(key="nb_choose").click().run()
    assert not app.exception, app.exception
    (record,) = (cache / rankings.FOLDER).glob("*.request.json")
    return record.name.removesuffix(".request.json")


def test_the_batch_from_a_pool_is_ranked_apart_then_shows_its_images_what_was_left_out_and_the_downloads(
    cache, curve_data, tmp_path, monkeypatch
):
    app = open_page(cache, "pages/13_Next_batch.py", monkeypatch, curve_data)
    assert app.selectbox(key="nb_strategy").value == DEFAULT
    key = _choose(app, cache, _pool(tmp_path / "pool", curve_data), 4)
    assert [bar.proto.text for bar in app.get("progress")] == ["Ranking the pool: starting…"]
    deadline = time.monotonic() + 120
    while rankings.status(cache, key).running and time.monotonic() < deadline:
        time.sleep(0.2)
    app.run()
    assert not app.exception, app.exception
    assert "**4 images to label next**, typical images while labels are few" in texts(app)
    left_out = next(d.value for d in app.dataframe if "reason" in d.value.columns)
    assert [Path(p).name for p in left_out["path"]] == ["again.png"] and "near-copy" in left_out["reason"][0]
    assert [b.proto.label for b in app.get("download_button")] == [
        "The batch as CSV",
        "Label Studio import file",
    ]
    assert rankings.status(cache, key).stage.name != "starting", "the command reports its own stages"


def test_cancel_stops_the_pools_ranking_within_seconds_and_writes_no_batch(
    cache, curve_data, tmp_path, monkeypatch
):
    app = open_page(cache, "pages/13_Next_batch.py", monkeypatch, curve_data)
    key = _choose(app, cache, _pool(tmp_path / "pool", curve_data), 4)
    pid = read_json(cache / rankings.FOLDER / f"{key}.request.json")["pid"]
    started = time.monotonic()
    app.button(key="nb_choose_cancel").click().run()
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "Stopped: the pool's ranking was cancelled, and no batch was written." in [
        w.value for w in app.warning
    ]
    assert not list((cache / "nextbatch" / "batches").glob("*/batch.csv"))


@pytest.mark.browser
def test_in_the_browser_the_backtest_says_its_time_left_cancel_stops_it_and_labels_come_back(
    cache, curve_data, tmp_path
):
    need_chromium()
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    pool, uploads = _pool(tmp_path / "pool", curve_data), tmp_path / "uploads"
    labels = tmp_path / "labels.csv"  # as the labelling tool gives the batch back: paths in the pool
    rows = [f"{p.name},{p.name.rsplit('-', 1)[0]}" for p in sorted(pool.glob("*-*"))]
    labels.write_text("\n".join(["path,label", *rows]) + "\n")
    with serve(cache, uploads=uploads) as url, browser_page() as page:
        visit(page, url, "Next_batch", "Does a smarter choice beat random on your data?")
        page.get_by_role("button", name="Run the backtest").click()
        # the fragment redraws itself: the pace is known once the first round is replayed
        page.get_by_text(re.compile(r"rounds replayed, about [\d,]+ s left")).wait_for(timeout=120_000)
        screenshot(page, "next-batch-backtest-running")
        _, pid = only_request(cache)
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("Stopped: the backtest was cancelled").wait_for(timeout=10_000)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

        page.get_by_label("Folder of unlabelled images (any layout)").fill(str(pool))
        page.get_by_label("Folder of unlabelled images (any layout)").press("Enter")
        wait_rendered(page)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(labels))
        page.get_by_text("labels.csv").wait_for(timeout=30_000)
        page.get_by_role("button", name="Import the labels").click()
        version = uploads / f"{curve_data.name}-v2"
        page.get_by_text(f"{version.name}: 8 newly labelled images added").wait_for(timeout=60_000)
        screenshot(page, "next-batch-labels-back")
        assert scan(version, cache).counts() == {name: 152 for name in CURVE_CLASSES}
        page.get_by_role("button", name=f"Work on {version.name}").click()
        page.get_by_text("The Learning curve page queues one").wait_for(timeout=30_000)  # no runs on it yet
    assert read_json(cache / "ui.json")["dataset"] == str(version)


def test_the_pool_chosen_on_the_data_page_is_the_one_the_next_batch_page_ranks(
    cache, curve_data, tmp_path, monkeypatch
):
    folder = _pool(tmp_path / "pool", curve_data).resolve()
    app = open_page(cache, "pages/1_Data.py", monkeypatch, curve_data)
    app.text_input(key="pool_path").set_value(str(tmp_path / "nowhere")).run()
    app.button(key="pool_use").click().run()
    assert [e.value for e in app.error] == [f"{tmp_path / 'nowhere'} is not a folder on this machine"]
    app.text_input(key="pool_path").set_value(str(folder)).run()
    app.button(key="pool_use").click().run()
    assert not app.exception, app.exception
    assert any(f"In use: {folder}" in c.value for c in app.caption)
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    assert app.text_input(key="nb_pool").value == str(folder)


def test_labels_uploaded_on_the_page_become_a_new_version_and_a_bad_file_writes_nothing(
    cache, curve_data, tmp_path, monkeypatch
):
    uploads = tmp_path / "uploads"
    monkeypatch.setattr(upload, "UPLOADS", uploads)
    pool = _pool(tmp_path / "pool", curve_data)
    app = open_page(cache, PAGE, monkeypatch, curve_data)
    app.text_input(key="nb_pool").set_value(str(pool)).run()  # the batch's pool: paths relative to it

    bad = "path,label\nCoat-nowhere.png,Coat\nagain.png,Sock\n"
    app.file_uploader(key="nb_labels_0").set_value(("labels.csv", bad.encode(), "text/csv")).run()
    app.button(key="nb_labels_go").click().run()
    assert not app.exception, app.exception
    (error,) = [e.value for e in app.error]
    assert error.startswith("labels.csv:") and "Sock" in error and "Coat-nowhere.png" in error
    assert not list(uploads.glob("*")), "nothing written for an invalid file"

    rows = [f"{p.name},{p.name.rsplit('-', 1)[0]}" for p in sorted(pool.glob("*-*"))]
    good = "\n".join(["path,label", *rows]) + "\n"
    app.file_uploader(key="nb_labels_0").set_value(("labels.csv", good.encode(), "text/csv")).run()
    app.button(key="nb_labels_go").click().run()
    assert not app.exception, app.exception
    version = uploads / f"{curve_data.name}-v2"
    added = ", ".join(f"{name} 2" for name in sorted(CURVE_CLASSES))
    assert f"{version.name}: 8 newly labelled images added ({added}), 608 images in all" in texts(app)
    assert scan(version, cache).counts() == {name: 152 for name in CURVE_CLASSES}
    assert (version / "labels-import-source.csv").read_text() == good, "the file as it came, kept"
    assert scan(curve_data, cache).counts() == {name: 150 for name in CURVE_CLASSES}, "the old one untouched"
    app.button(key="nb_labels_use").click().run()
    assert read_json(cache / "ui.json")["dataset"] == str(version)
