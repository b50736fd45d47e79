"""The Present page's link handling: a link's dataset for this session only, its experiment,
target and step, and the address kept in step with what the page shows. Nothing here writes."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.base.errors import UserError
from core.data.upload import local_datasets
from core.present.story import STEPS, Story, find_dataset
from core.store import run_queries as rq
from pages.common import loaders, state

ROOM_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding-top: 3.5rem}
[data-testid="stMain"] h1 {font-size: 1.5rem; padding: 0}
[data-testid="stMain"] p, [data-testid="stMain"] li {font-size: 1.6rem; line-height: 1.45}
[data-testid="stMain"] h2 {font-size: 3rem}
[data-testid="stMain"] [data-testid="stMetricValue"] p {font-size: 4.5rem; line-height: 1.2}
[data-testid="stMain"] [data-testid="stMetricLabel"] p {font-size: 1.5rem}
[data-testid="stMain"] [data-testid="stCaptionContainer"] p {font-size: 1.25rem}
[data-testid="stMain"] [data-testid="stImageCaption"] {font-size: 1.4rem}
</style>"""


def open_link(cache: Path) -> None:
    """Before the page's frame: a link just opened makes its dataset the one in use in this
    session (the saved choice stays); an unknown one is said once on the page."""
    link = st.query_params.get("dataset")
    if not link or link == st.session_state.get("present_link"):
        return
    table = loaders.run_table(cache)
    found = find_dataset(link, [*map(str, local_datasets()), *rq.folder_labels(table)])
    if found:
        state.show_dataset(found)
    else:
        st.session_state["present_unknown"] = link


def unknown_dataset(data: str) -> None:
    st.session_state["present_link"] = data
    if unknown := st.session_state.pop("present_unknown", None):
        st.warning(f"No dataset called {unknown} here: showing {Path(data).name}, the dataset in use.")


def _number(name: str, default: float) -> float:
    try:
        return float(st.query_params.get(name, default))
    except ValueError:
        return default


def story(cache: Path, data: str) -> Story | None:
    """The link's experiment and target (90 or 0.9), else the defaults; None with no curve."""
    experiment, target = st.query_params.get("experiment"), _number("target", 0) or None
    target = target / 100 if target and target > 1 else target
    try:
        return loaders.story(cache, data, experiment, target, state.split())
    except UserError:
        if experiment is None and target is None:
            return None
    st.warning(f"Nothing to show for that experiment or target on {Path(data).name}: showing the default.")
    try:
        return loaders.story(cache, data, None, None, state.split())
    except UserError:
        return None


def step(data: str, story: Story | None) -> int:
    """The step shown (the link's at first, then the buttons'), written back into the address
    with the dataset and experiment, so that the address is always a link to this view."""
    st.session_state.setdefault("present_step", int(min(max(_number("step", 1), 1), len(STEPS))))
    shown = st.session_state["present_step"]
    st.query_params.update(
        {"dataset": data, "step": str(shown), **({"experiment": story.experiment} if story else {})}
    )
    return shown


def move(by: int) -> None:
    st.session_state["present_step"] = min(max(st.session_state["present_step"] + by, 1), len(STEPS))
