"""The page frame every page shares: the header, the navigation, and the empty-cache stop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from pathlib import Path

import pandas as pd
import streamlit as st

from core.store import run_queries as rq

NAVIGATION = {  # path: (label, what it answers, icon from Streamlit's bundled Material font)
    "app.py": ("Home", "what the tool answers and the original experiment", ":material/home:"),
    "pages/1_Data.py": ("Data", "classes, splits, samples, your own images", ":material/folder_open:"),
    "pages/2_Train.py": ("Train", "queue runs and watch them train live", ":material/model_training:"),
    "pages/3_Experiments.py": ("Experiments", "training and validation curves", ":material/show_chart:"),
    "pages/4_Holdout.py": (
        "Holdout",
        "accuracy by amount of training data, and how sure",
        ":material/bar_chart:",
    ),
    "pages/11_Run.py": (
        "Run",
        "one run per class, on a test set of yours, exported",
        ":material/description:",
    ),
    "pages/6_Learning_curve.py": (
        "Learning curve",
        "how many labels a target takes, and a backtest",
        ":material/trending_up:",
    ),
    "pages/7_Label_next.py": ("Label next", "which classes more labels pay most in", ":material/label:"),
    "pages/13_Next_batch.py": (
        "Next batch",
        "which images to label next, how many this round, and whether choosing beats random",
        ":material/playlist_add_check:",
    ),
    "pages/9_Trust.py": ("Trust", "calibration, and the share left to a person", ":material/verified_user:"),
    "pages/12_Audit.py": (
        "Audit",
        "wrong labels and leaks in the holdout, confused classes",
        ":material/fact_check:",
    ),
    "pages/5_Grad-CAM.py": ("Grad-CAM", "where the model looked on its mistakes", ":material/visibility:"),
    "pages/14_Present.py": (
        "Present",
        "the story for a room in six steps, changing nothing",
        ":material/slideshow:",
    ),
    "pages/10_Predict.py": ("Predict", "a trained run on your new images", ":material/image_search:"),
    "pages/8_Quiz.py": ("Quiz", "guess the accuracy, then see it", ":material/quiz:"),
}


def page_link(path: str, describe: bool = False) -> None:
    label, answers, icon = NAVIGATION[path]
    st.page_link(path, label=f"{label}: {answers}" if describe else label, icon=icon)


def header(title: str, question: str, sidebar: str = "auto") -> None:
    """Page title, the one question the page answers, the links to every page, and the dataset
    in use, which every page follows and any page can switch. ``sidebar="collapsed"`` opens
    the page with the sidebar folded away (the Present page, for a room). Sign-in and the
    write switch come first (:mod:`pages.common.signin`): a signed-out visitor sees nothing else."""
    from pages.common import signin, state

    st.set_page_config(
        page_title=f"{title} · How Much Data?", page_icon="📊", layout="wide", initial_sidebar_state=sidebar
    )
    signin.gate()
    with st.sidebar:
        for path in NAVIGATION:
            page_link(path)
        _dataset_switch(state)
        st.session_state["technical_names"] = state.technical()  # the widget forgets it between pages
        st.toggle(
            "Technical names",
            key="technical_names",
            on_change=state.remember_technical,
            help="Experiments and runs by their settings' names and ids instead of words",
        )
    st.title(title)
    st.caption(question)
    _damage_warnings(state.cache_dir())


def _damage_warnings(cache: Path) -> None:
    """Name every damaged run on every page: each page leaves them out of what it shows."""
    from pages.common.loaders import damaged_runs

    for rid, reason in damaged_runs(cache).items():
        st.warning(
            f"Run {rid} is damaged ({reason}) and left out; train it again, or run "
            "`python -m core doctor --fix` to move it aside."
        )


def _dataset_switch(state) -> None:
    """A picker of the datasets that have runs, the bundled and uploaded ones, and the one in
    use; picking one makes it the dataset in use everywhere (and on the next visit)."""
    from core.data.upload import local_datasets
    from pages.common.loaders import run_table

    current = state.dataset()
    table = run_table(state.cache_dir())
    names = {str(path): path.name for path in local_datasets()}
    names.update(rq.folder_labels(table))
    names.setdefault(current, Path(current).name)
    paths = sorted(names, key=lambda p: names[p].lower())
    st.divider()
    chosen = st.selectbox(
        "Dataset in use",
        paths,
        index=paths.index(current),
        format_func=names.get,
        key=state.key("dataset_switch", current),
        help="Every page follows it; the Data page adds others",
    )
    if chosen != current:
        state.set_dataset(chosen)
        st.rerun()


def lines_table(lines: Sequence[object], columns: Sequence[str]) -> None:
    """Records of words (frozen dataclasses of strings, one per row) as a table headed ``columns``;
    nothing where there are none."""
    if lines:
        st.dataframe(pd.DataFrame([astuple(line) for line in lines], columns=list(columns)), hide_index=True)


def dataset_runs(cache: Path) -> tuple[pd.DataFrame, str]:
    """The runs of the dataset in use and its name; when it has none, say so (naming the
    datasets that do) and stop the page."""
    from pages.common import state

    table = runs_or_stop(cache)
    current = state.dataset()
    mine = rq.of_folder(table, current)
    if mine.empty:
        others = ", ".join(rq.datasets(table))
        st.info(
            f"No runs on {Path(current).name} yet: launch some on the Train page, or switch the dataset in "
            f"use in the sidebar (runs exist for {others})."
        )
        page_link("pages/2_Train.py", describe=True)
        st.stop()
    return mine, rq.dataset_label(mine)


def runs_or_stop(cache: Path) -> pd.DataFrame:
    """The table of cached runs; on an empty cache, say what to do next and stop the page."""
    from pages.common.loaders import run_table

    table = run_table(cache)
    if table.empty:
        st.info("No runs cached yet. Launch some on the Train page, or run the original grid from Home.")
        page_link("pages/2_Train.py", describe=True)
        st.stop()
    return table
