"""Home: what the tool answers, the dataset in use, the cache, and the original experiment."""

from pathlib import Path

import streamlit as st

from core.base.errors import UserError
from core.serving import jobs
from core.store import run_queries
from core.store.config import original_grid
from core.store.doctor import check, headline
from pages.common import layout, loaders, signin, state

layout.header("How Much Data?", "How many labelled images per class does your image classifier really need?")
st.markdown(
    "Train the same pretrained backbone on nested slices of your labelled images (1 or 3 per "
    "class, then 5% … 100%) and score every run on one fixed holdout set. Where the holdout "
    "bars stop rising, more labels stop paying."
)
cache = state.cache_dir()


@st.cache_data(ttl=30, show_spinner=False)
def cache_warning(cache_path: str) -> str | None:
    """The quick cache check, at most every 30 s."""
    return headline(check(Path(cache_path), deep=False))


if warning := cache_warning(str(cache)):
    st.warning(warning)


def queue_original_grid() -> None:
    """Runs before the page redraws, so the counts below already include the new jobs."""
    try:
        fits, left_out = jobs.drawable(cache, original_grid(state.dataset(), state.split()))
        done = jobs.submit_and_tally(cache, fits)
    except UserError as error:
        st.session_state["home_message"] = ("error", str(error))
        return
    skipped = f" Left out, too large for this dataset: {', '.join(left_out)}." if left_out else ""
    st.session_state["home_message"] = (
        "success",
        done + skipped + " Watch them on the Train page; bars fill in on the Holdout page.",
    )


table = loaders.run_table(cache)
dataset = Path(state.dataset())
mine = run_queries.of_folder(table, str(dataset))
waiting = [j for j in jobs.list_jobs(cache) if j.state in ("queued", "running")]
cols = st.columns(3)
cols[0].metric("Dataset in use", dataset.name)
cols[1].metric(
    "Runs on this dataset", len(mine), help=f"{len(table)} cached on all datasets; switch in the sidebar"
)
cols[2].metric("Queued or training", len(waiting), help="on every dataset")

st.subheader(f"The original experiment on {dataset.name}")
st.markdown(
    "Frozen EfficientNet-Lite0 (ImageNet weights), a new head trained on 1/class, 3/class, 5%, "
    "10%, 20% … 100% of the training pool, seeds 1, 2 and 3: 39 runs. The Train page shows them "
    "train, with the time left."
)
st.button(
    "Run the original experiment grid",
    type="primary",
    key="home_grid",
    on_click=queue_original_grid,
    **signin.locked(),
)
if message := st.session_state.pop("home_message", None):
    kind, text = message
    getattr(st, kind)(text)

st.subheader("Pages")
for path in list(layout.NAVIGATION)[1:]:
    layout.page_link(path, describe=True)
if mine.empty and not waiting:
    st.info(f"No runs on {dataset.name} yet: press the button above, or choose runs on the Train page.")
