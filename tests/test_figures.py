"""Figures that need no run."""

import pandas as pd

from core.present.figures import smooth


def test_smoothing_keeps_length_and_zero_is_raw():
    values = pd.Series([1.0, 0.0, 1.0, 0.0])
    assert smooth(values, 0).equals(values)
    smoothed = smooth(values, 0.9)
    assert len(smoothed) == 4 and smoothed.std() < values.std()
