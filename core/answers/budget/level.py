"""What every answer states: the level of its intervals and how far past the largest measured slice
it is called reliable."""

from __future__ import annotations

from core.answers import curves

LEVEL = 0.8  # the interval the answer states; the backtest checks how often it holds
RELIABLE_MULTIPLE = curves.RELIABLE_MULTIPLE
