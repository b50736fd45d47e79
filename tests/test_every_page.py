"""Every page in ``pages/`` on every state a cache can be in: no page ever shows an exception.

A newcomer's first run (one experiment of one run) crashed the Run page; the states here are the
ones a user reaches: nothing yet, that first run, many experiments with a run scored on a second
test set and runs on two datasets, a run deleted or damaged behind the app's back, and a cache
written before the typed record.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import testsets
from core.base.paths import PROJECT_ROOT, write_json
from core.engine.pipeline import sweep
from core.store import runs
from tests.quick import quick_run

PAGES = sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "pages").glob("*.py"))
WITHOUT_RUNS = ("pages/12_Audit.py", "pages/1_Data.py", "pages/2_Train.py")  # useful before any run
# what a page with nothing to show says to do: train runs, or (the answer pages) a learning curve
WHAT_TO_DO = ("No runs cached yet. Launch some on the Train page", "train a learning curve first")
LEGACY_DATA = "/tmp/legacy-data/tiny"  # where the fixture's runs were trained; it no longer exists


def render(cache: Path, page: str, monkeypatch, data: Path | str | None) -> AppTest:
    monkeypatch.setenv("HMD_CACHE", str(cache))
    if data is not None:
        write_json(cache / "ui.json", {"dataset": str(data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120).run()
    assert not app.exception, f"{page}: {app.exception}"
    app.switch_page(page).run()
    assert not app.exception, f"{page}: {app.exception}"
    return app


def texts(app: AppTest) -> str:
    kinds = ("markdown", "info", "warning", "error", "caption")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(app, kind))


@pytest.fixture(scope="module")
def first_run(tiny_data, tmp_path_factory) -> Path:
    """A newcomer's cache: one experiment of one run."""
    cache = tmp_path_factory.mktemp("first-run")
    sweep(quick_run(tiny_data), ["1/class"], [1], cache)
    return cache


@pytest.fixture(scope="module")
def many(tiny_data, other_data, tmp_path_factory) -> Path:
    """Two experiments on the tiny dataset (L-BFGS and AdamW heads), its first run scored on a
    second test set, and a run on a second dataset."""
    cache = tmp_path_factory.mktemp("many")
    for solver in ("lbfgs", "adamw"):
        sweep(quick_run(tiny_data, solver=solver), ["1/class", "3/class"], [1], cache)
    sweep(quick_run(other_data), ["1/class"], [1], cache)
    first = next(s for s in runs.list_runs(cache) if s.config.data == str(tiny_data))
    testsets.score(cache, first.run_id, other_data)
    return cache


def _copy(cache: Path, target: Path) -> Path:
    shutil.copytree(cache, target)
    return target


def _deleted(cache: Path, target: Path) -> Path:
    copy = _copy(cache, target)
    shutil.rmtree(runs.complete_dir(copy, runs.list_runs(copy)[0].run_id).path)
    return copy


def _damaged(cache: Path, target: Path) -> Path:
    copy = _copy(cache, target)
    runs.complete_dir(copy, runs.list_runs(copy)[0].run_id).predictions.write_text("image_index,path\n0,")
    return copy


def _legacy(_: Path, target: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "legacy-runs", runs.runs_dir(target))
    return target


# state -> (the trained cache it starts from, how it is changed, the dataset in use)
STATES: dict[str, tuple[str | None, Callable[[Path, Path], Path], str | None]] = {
    "empty": (None, lambda _, target: target, None),
    "one run": ("first_run", _copy, "tiny"),
    "many experiments, a second test set, two datasets": ("many", _copy, "tiny"),
    "a deleted run": ("many", _deleted, "tiny"),
    "a damaged run": ("many", _damaged, "tiny"),
    "a legacy cache": (None, _legacy, LEGACY_DATA),
}


@pytest.mark.train
@pytest.mark.parametrize("state", list(STATES))
def test_no_page_shows_an_exception(state, request, tmp_path, monkeypatch, tiny_data):
    trained, change, dataset = STATES[state]
    source = request.getfixturevalue(trained) if trained else tmp_path / "none"
    cache = change(source, tmp_path / "cache")
    cache.mkdir(exist_ok=True)
    data = str(tiny_data) if dataset == "tiny" else dataset
    for page in PAGES:
        app = render(cache, page, monkeypatch, data)
        if state == "empty" and page not in WITHOUT_RUNS:
            assert any(words in texts(app) for words in WHAT_TO_DO), page
        if state == "a damaged run":
            assert "is damaged (predictions.csv has" in texts(app), page
        if state == "a legacy cache":
            switch = next(box for box in app.selectbox if box.key.startswith("dataset_switch::"))
            switch.set_value(LEGACY_DATA).run()  # the legacy runs' own dataset, though it is gone
            assert not app.exception, f"{page}: {app.exception}"
