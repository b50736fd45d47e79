"""The benchmark table's verdicts: ratios and targets read the way the README states them."""

import pytest

from bench.measure import Row, steady_rate


def test_higher_is_better_ratio_against_target():
    row = Row("fine-tune", "ours vs plain", ours=90.0, baseline=100.0, unit="img/s", target=0.9)
    assert row.ratio == pytest.approx(0.9) and row.met is True
    assert Row("x", "y", 80.0, 100.0, "img/s", target=0.9).met is False


def test_lower_is_better_absolute_target():
    assert Row("grid", "cached", ours=0.4, baseline=None, unit="s", better="lower", target=1.0).met
    assert not Row("grid", "cached", ours=1.4, baseline=None, unit="s", better="lower", target=1.0).met
    assert Row("x", "y", 1.0, 2.0, "s", better="lower").met is None


def test_steady_rate_skips_warmup_steps():
    stamps = [0.0, 5.0, 6.0, 7.0, 8.0]  # a slow first step, then one step a second
    assert steady_rate(stamps, items_per_step=32, warmup=1) == pytest.approx(32.0)
    with pytest.raises(ValueError):
        steady_rate([0.0, 1.0], 32, warmup=2)
