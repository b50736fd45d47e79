"""Pickers several pages share."""

from __future__ import annotations

import streamlit as st

from core.store.config import Split
from pages.common import state


def split(found: list[tuple[Split, int]], preferred: Split, data: str) -> Split:
    """The split whose runs a page shows: a picker when the dataset's runs were scored on
    several holdouts (the split new runs use first), else the only one (``preferred`` when
    there is none yet)."""
    splits = [split for split, _ in found] or [preferred]
    if len(splits) == 1:
        return splits[0]
    counts = dict(found)
    return st.selectbox(
        "Holdout",
        splits,
        index=splits.index(preferred) if preferred in splits else 0,
        format_func=lambda s: (
            f"{s.holdout:.0%} of each class held out (split seed {s.seed}): {counts[s]} runs"
        ),
        key=state.key("split", data),
    )
