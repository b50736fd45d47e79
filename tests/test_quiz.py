"""The Quiz page asks in percent and answers in percent, each measured number with the 95%
interval its holdout allows (it took guesses in percent and revealed bare fractions)."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from core.answers import budget
from core.base.intervals import wilson
from core.base.paths import PROJECT_ROOT, write_json

pytestmark = pytest.mark.train


def test_the_quiz_reveals_percentages_with_the_holdouts_interval(
    curve_cache, curve_data, tmp_path, monkeypatch
):
    cache = shutil.copytree(curve_cache, tmp_path / "cache")
    monkeypatch.setenv("HMD_CACHE", str(cache))
    write_json(cache / "ui.json", {"dataset": str(curve_data)})
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180).run()
    app.switch_page("pages/8_Quiz.py").run()
    assert all(box.label.endswith(", in %") for box in app.number_input)
    app.button(key="quiz_reveal").click().run()
    assert not app.exception
    table = app.dataframe[0].value
    selection = budget.select(cache, curve_data)
    held = selection.n_holdout
    asked = budget.quiz(selection)[0].slice  # half the pool
    largest = next(p for p in budget.curve_points(selection) if p.slice == asked)
    row = table[table["images per class"] == f"{largest.images_per_class:,.0f}"].iloc[0]
    assert row["measured"] == pytest.approx(100 * largest.accuracy)
    expected = wilson(largest.accuracy * held, held)
    assert row["right (95% interval)"] == (
        f"{expected.estimate:.0%} ({expected.low:.0%} to {expected.high:.0%})"
    )
    assert row["your guess"] == 50  # percent, as typed
