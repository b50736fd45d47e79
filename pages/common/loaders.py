"""Cached reads of the on-disk cache. A complete run never changes, so its files are cached by
run id; the list of runs is re-read only when the set of run folders changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import runs
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


@st.cache_data(show_spinner=False, max_entries=2000)
def predictions(cache: str, run_id: str) -> pd.DataFrame:
    return runs.load_predictions(runs.find_run(Path(cache), run_id))


@st.cache_data(show_spinner=False, max_entries=2000)
def metrics(cache: str, run_id: str) -> pd.DataFrame:
    return runs.load_metrics(runs.find_run(Path(cache), run_id))


@st.cache_data(show_spinner=False, max_entries=2000)
def summary(cache: str, run_id: str) -> dict:
    return runs.load_summary(runs.find_run(Path(cache), run_id))
