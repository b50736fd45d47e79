"""The Next batch page with Streamlit's AppTest on a copy of the learning-curve cache: the round
plan's numbers are the plan's, the backtest started from the page runs in a process of its own
and the page then shows its verdict, and Cancel stops that process within seconds."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget, rounds
from core.answers.nextbatch.simulate import Settings
from core.base.paths import PROJECT_ROOT, read_json, write_json
from core.data.datasets import scan
from core.serving import simulations

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


def open_page(cache: Path, data: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    kinds = ("markdown", "info", "warning", "error", "caption")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(app, kind))


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
    app = open_page(cache, curve_data, monkeypatch)
    app.number_input(key="nb_target").set_value(90.0)
    app.number_input(key="nb_step").set_value(20).run()
    assert not app.exception, app.exception
    expected = rounds.plan(budget.analyse(budget.select(cache, curve_data)), 0.9, 20)
    table = next(d.value for d in app.dataframe if "labels per class, in all" in d.value.columns)
    assert list(table["labels per class, in all"]) == [r.cumulative_per_class for r in expected.rounds]
    assert set(table["labels this round (all classes)"]) == {20 * 4}
    assert list(table["predicted accuracy"]) == [f"{r.accuracy.estimate:.1%}" for r in expected.rounds]
    assert list(table["interval"]) == [
        f"{r.accuracy.low:.1%} to {r.accuracy.high:.1%}" for r in expected.rounds
    ]
    assert list(table["chance the target is reached"]) == [f"{r.p_reached:.0%}" for r in expected.rounds]
    assert expected.assumptions.rule in texts(app)


def test_the_backtest_runs_apart_and_the_page_shows_its_verdict(cache, curve_data, monkeypatch):
    app = open_page(cache, curve_data, monkeypatch)
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


def test_cancel_stops_the_backtest_process_and_says_so(cache, curve_data, monkeypatch):
    app = open_page(cache, curve_data, monkeypatch)
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
