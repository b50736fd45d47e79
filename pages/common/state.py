"""What every page shares: the cache folder, the dataset in use and the split new runs use.

Both are kept in ``cache/ui.json`` (the dataset in the session too), so a browser refresh, a new
tab or a restarted server opens on the same dataset and split.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.config import Split
from core.paths import DEFAULT_DATA, cache_root, read_json, write_json


def cache_dir() -> Path:
    return cache_root()


def _settings() -> Path:
    return cache_dir() / "ui.json"


def _saved() -> dict:
    try:
        saved = read_json(_settings())
    except (OSError, ValueError):  # no settings yet, or a damaged file
        return {}
    return saved if isinstance(saved, dict) else {}


def _save(**values) -> None:
    write_json(_settings(), {**_saved(), **values})


def dataset() -> str:
    """The dataset folder chosen on the Data page (the bundled one until then)."""
    if "dataset" not in st.session_state:
        saved = _saved().get("dataset")
        st.session_state["dataset"] = saved if saved and Path(saved).is_dir() else str(DEFAULT_DATA)
    return st.session_state["dataset"]


def set_dataset(path: str) -> None:
    if st.session_state.get("dataset") != path:
        st.session_state["dataset"] = path
        _save(dataset=path)


def split() -> Split:
    """The holdout share, validation share and split seed new runs use (set on the Data page)."""
    saved = _saved().get("split")
    try:
        return Split(*saved) if saved else Split()
    except TypeError:
        return Split()


def set_split(chosen: Split) -> None:
    _save(split=list(chosen))
