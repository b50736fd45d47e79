"""Experiments: training and validation curves of the cached runs, filtered and compared."""

import streamlit as st

from core.present import figures
from core.store.tables import FILTERS, listed_runs, run_labels, slice_order
from pages.common import layout, loaders, state

layout.header(
    "Experiments",
    "How did each run train? Train curves are solid, validation dashed; "
    "click a legend entry to hide a run, double-click to isolate it.",
)
cache = state.cache_dir()
table, _ = layout.dataset_runs(cache)

with st.sidebar:
    st.header("Filter")
    chosen = {}
    for column in FILTERS:
        options = slice_order(table) if column == "slice" else sorted(table[column].unique().tolist())
        chosen[column] = st.multiselect(column, options, key=state.key("exp", column))
    limit = st.slider(
        "Most runs drawn",
        1,
        60,
        12,
        key="exp_limit",
        help="The newest matching runs; narrow the filters to see others",
    )
    smoothing = st.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key="exp_smoothing")

shown = table
for column, values in chosen.items():
    if values:
        shown = shown[shown[column].isin(values)]
st.markdown(f"**{len(shown)}** of {len(table)} runs match; drawing the newest {min(limit, len(shown))}.")
shown = shown.head(limit)
if shown.empty:
    st.warning("No run matches these filters.")
    st.stop()

names = run_labels(shown)
series = {names[r.run_id]: loaders.metrics(str(cache), r.run_id) for r in shown.itertuples()}
hover = {
    names[r.run_id]: f"{r.slice} · seed {r.seed} · {r.experiment} [{r.run_id}]" for r in shown.itertuples()
}
left, right = st.columns(2)
left.plotly_chart(figures.curves(series, "loss", smoothing, hover), key="exp_loss")
right.plotly_chart(figures.curves(series, "acc", smoothing, hover), key="exp_acc")

st.dataframe(
    listed_runs(shown, loaders.experiment_names(cache, shown), state.technical()),
    hide_index=True,
    column_config={
        "accuracy": st.column_config.ProgressColumn(
            "holdout accuracy", min_value=0, max_value=1, format="%.3f"
        )
    },
)
