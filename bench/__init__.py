"""``python -m bench``: the engine measured against plain baselines, side by side, as ratios."""
