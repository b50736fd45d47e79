"""What every page shares: the cache folder, the dataset in use, the page header.

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


def dataset() -> str:
    """The dataset folder chosen on the Data page (the bundled one until then)."""
    if "dataset" not in st.session_state:
        saved = read_json(_settings()).get("dataset") if _settings().exists() else None
        st.session_state["dataset"] = saved if saved and Path(saved).is_dir() else str(DEFAULT_DATA)
    return st.session_state["dataset"]


def set_dataset(path: str) -> None:
    if st.session_state.get("dataset") != path:
        st.session_state["dataset"] = path
        write_json(_settings(), {"dataset": path})


NAVIGATION = {  # path: (label, what it answers, icon from Streamlit's bundled Material font)
    "app.py": ("Home", "what the tool answers and the original experiment", ":material/home:"),
    "pages/1_Data.py": ("Data", "classes, splits, samples, augmentation preview", ":material/folder_open:"),
    "pages/2_Train.py": ("Train", "queue runs and watch them train live", ":material/model_training:"),
    "pages/3_Experiments.py": ("Experiments", "training and validation curves", ":material/show_chart:"),
    "pages/4_Holdout.py": ("Holdout", "accuracy bars and argmax against confidence", ":material/bar_chart:"),
    "pages/5_Grad-CAM.py": ("Grad-CAM", "where the model looked on its mistakes", ":material/visibility:"),
}


def page_link(path: str, describe: bool = False) -> None:
    label, answers, icon = NAVIGATION[path]
    st.page_link(path, label=f"{label}: {answers}" if describe else label, icon=icon)


def header(title: str, question: str) -> None:
    """Page title, the one question the page answers, and the links to every page."""
    st.set_page_config(page_title=f"{title} · How Much Data?", page_icon="📊", layout="wide")
    with st.sidebar:
        for path in NAVIGATION:
            page_link(path)
    st.title(title)
    st.caption(question)


def runs_or_stop(cache: Path):
    """The table of cached runs; on an empty cache, say what to do next and stop the page."""
    from pages.common.loaders import run_table

    table = run_table(cache)
    if table.empty:
        st.info("No runs cached yet. Launch some on the Train page, or run the original grid from Home.")
        page_link("pages/2_Train.py", describe=True)
        st.stop()
    return table
