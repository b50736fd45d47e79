"""Intervals on shares from finite samples: the Wilson interval's known values."""

import math

import pytest

from core.base.intervals import Estimate, wilson


def test_wilson_matches_published_values():
    # 95% Wilson intervals (Newcombe 1998, table I): 81/263 -> 0.2553 to 0.3662
    e = wilson(81, 263)
    assert e.estimate == pytest.approx(81 / 263)
    assert (round(e.low, 4), round(e.high, 4)) == (0.2553, 0.3662)


def test_a_perfect_score_on_a_small_holdout_is_not_certain():
    perfect = wilson(30, 30)
    assert perfect.estimate == 1.0 and perfect.high == 1.0 and perfect.low == pytest.approx(0.8865, abs=1e-4)
    nothing = wilson(0, 10)
    assert nothing.low == 0.0 and nothing.high == pytest.approx(0.2775, abs=1e-4)


def test_no_images_no_number_and_overlap():
    assert all(math.isnan(v) for v in (wilson(0, 0).estimate, wilson(0, 0).low))
    assert Estimate(0.5, 0.4, 0.6).overlaps(Estimate(0.65, 0.58, 0.7))
    assert not Estimate(0.5, 0.4, 0.6).overlaps(Estimate(0.8, 0.7, 0.9))
    assert wilson(0, 0).to_dict() == {"estimate": None, "low": None, "high": None}
