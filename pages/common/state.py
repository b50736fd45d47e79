"""What every page shares: the cache folder and the dataset in use.

The dataset in use is kept in the session and in ``cache/ui.json``, so a browser refresh, a new
tab or a restarted server opens on the same dataset.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.paths import DEFAULT_DATA, cache_root, read_json, write_json


def cache_dir() -> Path:
    return cache_root()


def _settings() -> Path:
    return cache_dir() / "ui.json"


def _saved_dataset() -> str | None:
    try:
        return read_json(_settings()).get("dataset")
    except (OSError, ValueError, AttributeError):  # no settings yet, or a damaged file
        return None


def dataset() -> str:
    """The dataset folder chosen on the Data page (the bundled one until then)."""
    if "dataset" not in st.session_state:
        saved = _saved_dataset()
        st.session_state["dataset"] = saved if saved and Path(saved).is_dir() else str(DEFAULT_DATA)
    return st.session_state["dataset"]


def set_dataset(path: str) -> None:
    if st.session_state.get("dataset") != path:
        st.session_state["dataset"] = path
        write_json(_settings(), {"dataset": path})
