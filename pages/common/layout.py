"""The page frame every page shares: the header, the navigation, and the empty-cache stop."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

NAVIGATION = {  # path: (label, what it answers, icon from Streamlit's bundled Material font)
    "app.py": ("Home", "what the tool answers and the original experiment", ":material/home:"),
    "pages/1_Data.py": ("Data", "classes, splits, samples, augmentation preview", ":material/folder_open:"),
    "pages/2_Train.py": ("Train", "queue runs and watch them train live", ":material/model_training:"),
    "pages/3_Experiments.py": ("Experiments", "training and validation curves", ":material/show_chart:"),
    "pages/4_Holdout.py": ("Holdout", "accuracy bars and argmax against confidence", ":material/bar_chart:"),
    "pages/5_Grad-CAM.py": ("Grad-CAM", "where the model looked on its mistakes", ":material/visibility:"),
    "pages/6_Learning_curve.py": (
        "Learning curve",
        "how many labels a target accuracy takes, with an interval and a backtest",
        ":material/trending_up:",
    ),
    "pages/7_Label_next.py": (
        "Label next",
        "which classes more labels pay most in, checked by training",
        ":material/label:",
    ),
    "pages/8_Quiz.py": (
        "Quiz",
        "guess the accuracy, then see it: for a room of stakeholders",
        ":material/quiz:",
    ),
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


def runs_or_stop(cache: Path) -> pd.DataFrame:
    """The table of cached runs; on an empty cache, say what to do next and stop the page.
    Damaged runs are named in a warning (they are left out of the table)."""
    from pages.common.loaders import damaged_runs, run_table

    for rid, reason in damaged_runs(cache).items():
        st.warning(
            f"Run {rid} is damaged ({reason}) and left out; train it again, or run "
            "`python -m core doctor --fix` to move it aside."
        )
    table = run_table(cache)
    if table.empty:
        st.info("No runs cached yet. Launch some on the Train page, or run the original grid from Home.")
        page_link("pages/2_Train.py", describe=True)
        st.stop()
    return table
