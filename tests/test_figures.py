"""Figures that need no run."""

import pandas as pd
import pytest

from core.answers.nextbatch.simulate import Curve, Settings, Simulation
from core.present.figures import class_counts, next_batch_backtest, smooth


def test_smoothing_keeps_length_and_zero_is_raw():
    values = pd.Series([1.0, 0.0, 1.0, 0.0])
    assert smooth(values, 0).equals(values)
    smoothed = smooth(values, 0.9)
    assert len(smoothed) == 4 and smoothed.std() < values.std()


def test_the_backtest_chart_draws_a_line_per_strategy_with_its_band_over_seeds():
    labels = (4, 12, 20)
    random = Curve("random", labels, ((0.5, 0.6, 0.7), (0.5, 0.62, 0.72)))
    hybrid = Curve("hybrid", labels, ((0.5, 0.7, 0.8), (0.5, 0.72, 0.78)))
    simulation = Simulation(
        "data", "b", 64, 60, Settings(("random", "hybrid"), 1, 2, 2, (1, 2)), (random, hybrid)
    )
    lines = [t for t in next_batch_backtest(simulation).data if t.mode == "lines+markers"]
    bands = [t for t in next_batch_backtest(simulation).data if t.fill == "toself"]
    assert [t.name for t in lines] == ["random", "hybrid"] and len(bands) == 2
    # a band's corners drawn as markers read as measurements (Plotly's default under 21 points)
    assert {t.mode for t in bands} == {"lines"} and not any(t.showlegend for t in bands)
    assert list(lines[1].x) == list(labels)
    assert lines[1].y[-1] == pytest.approx(0.79)
    low, high = hybrid.rounds()[-1].low, hybrid.rounds()[-1].high
    assert bands[1].y[len(labels) - 1] == pytest.approx(high) and bands[1].y[len(labels)] == pytest.approx(
        low
    )
    one_seed = Simulation(
        "data",
        "b",
        64,
        60,
        Settings(("random",), 1, 2, 2, (1,)),
        (Curve("random", labels, ((0.5, 0.6, 0.7),)),),
    )
    assert not [t for t in next_batch_backtest(one_seed).data if t.fill == "toself"], "one seed has no band"


def test_a_holdout_tick_is_never_wider_than_a_share():
    """With twenty slices at 1280 px, "(set class by class)" under one bar ran into "(30%)" under
    the next: no line of a tick is longer than "(100%)"."""
    from core.present.figures import _tick

    ticks = {
        "30 per class": "30",
        "about 12 per class (5%)": "~12<br>(5%)",
        "400 per class (100%)": "400<br>(100%)",
        "2 per class (set class by class)": "2<br>(by<br>class)",
        "about 23 per class (set class by class)": "~23<br>(by<br>class)",
    }
    for label, tick in ticks.items():
        assert _tick(label) == tick
        assert max(len(line) for line in tick.split("<br>")) <= len("(100%)"), tick


def test_a_reliability_bar_of_one_image_carries_a_whisker_as_wide_as_one_image_allows():
    from core.answers.calibration import Bin
    from core.present.figures import reliability

    bins = [Bin(0.4, 0.5, 0.45, 1.0, 1), Bin(0.9, 1.0, 0.97, 0.9, 100)]
    bars = reliability(bins, bins).data[0]
    assert bars.error_y.arrayminus[0] > 0.7, "1 of 1 right: the interval reaches down past 30%"
    assert bars.error_y.arrayminus[1] < 0.1, "90 of 100: a narrow whisker"
    assert bars.error_y.array[0] == pytest.approx(0.0, abs=1e-9)


def test_both_trust_panels_share_one_range_of_images_per_class():
    from types import SimpleNamespace

    from core.present.figures import trust_by_size

    points = [
        SimpleNamespace(
            images_per_class=n, ece=0.1, ece_interval=(0.05, 0.2), ece_scaled=0.08,
            ece_scaled_interval=(0.03, 0.15),
            automated_share=share, automated_interval=None if share is None else (0.4, 0.6),
        )
        for n, share in ((1, None), (10, 0.5), (100, 0.7))
    ]  # fmt: skip
    figure = trust_by_size(points, 0.9)
    # every line carries its interval: the rescaled error once had none beside the trained one's
    scaled = next(trace for trace in figure.data if trace.name == "error after rescaling")
    assert list(scaled.error_y.array) == pytest.approx([0.07] * 3)
    assert list(scaled.error_y.arrayminus) == pytest.approx([0.05] * 3)
    layout = figure.layout
    assert layout.xaxis.range == layout.xaxis2.range, "a point missing on the right does not shift its axis"
    assert layout.xaxis.range[0] < 0 < 2 < layout.xaxis.range[1]


def test_a_class_name_with_markup_is_shown_as_typed():
    # Plotly renders <b> in an axis label: the folder "bag <b>" turned the axis bold and lost its tag
    assert list(class_counts({"bag <b>": 3, "coat": 4}).data[0].x) == ["bag &lt;b&gt;", "coat"]
