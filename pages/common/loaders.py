"""Cached reads of the on-disk cache. A complete run never changes, so its files are cached by
run id; the list of runs is re-read only when the set of run folders changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import runs
from core.report import probabilities as probabilities_of
from core.report import runs_frame


def _complete_ids(cache: Path) -> tuple[str, ...]:
    root = runs.runs_dir(cache)
    if not root.exists():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if not p.name.startswith(".")))


@st.cache_data(show_spinner=False, max_entries=8)
def _frame(cache: str, ids: tuple[str, ...]) -> pd.DataFrame:
    return runs_frame(runs.list_runs(Path(cache)))


def run_table(cache: Path) -> pd.DataFrame:
    """Every complete run as a row (see :func:`core.report.runs_frame`)."""
    return _frame(str(cache), _complete_ids(cache))


@st.cache_resource(show_spinner=False, max_entries=5000)
def probabilities(cache: str, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """A run's holdout probabilities and labels, shared by all sessions without copies
    (st.cache_data would unpickle a copy per call: 200 runs took most of a second). The arrays
    are read-only, so no page can change what another sees."""
    arrays = probabilities_of(runs.load_predictions(runs.find_run(Path(cache), run_id)))
    for array in arrays:
        array.flags.writeable = False
    return arrays


@st.cache_data(show_spinner=False, max_entries=2000)
def metrics(cache: str, run_id: str) -> pd.DataFrame:
    return runs.load_metrics(runs.find_run(Path(cache), run_id))


@st.cache_data(show_spinner=False, max_entries=2000)
def summary(cache: str, run_id: str) -> dict:
    return runs.load_summary(runs.find_run(Path(cache), run_id))
