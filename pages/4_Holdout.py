"""Holdout: accuracy on the fixed holdout set across slices, and how much of it is confident."""

import pandas as pd
import streamlit as st

from core.answers import audit
from core.base.words import counted
from core.present import figures
from core.store import run_queries as rq
from core.store.tables import (
    MODES_IN_WORDS,
    bars_explained,
    crossovers,
    holdout_bars,
    holdout_images,
    inseparable,
    policy_grid,
    slice_order,
    threshold_display,
    threshold_explained,
    threshold_rows,
)
from pages.common import layout, loaders, state

layout.header(
    "Holdout",
    "How accurate is the model with each amount of training data, on the same fixed holdout "
    "images, and how often is it sure and right?",
)
cache = state.cache_dir()
table, rescored = loaders.with_audited_variants(cache, layout.dataset_runs(cache)[0])
variants = rq.datasets(table)  # other images or another split under the same folder
dataset = (
    st.selectbox("Holdout", variants, key=state.key("hold_dataset", state.dataset()))
    if len(variants) > 1
    else variants[0]
)
table = all_runs = rq.of_dataset(table, dataset)
first = loaders.summary(str(cache), rq.first_run(table))
split = first.config.split
if (audited := audit.cached(cache, first.info.fingerprint, split)) and audited.near_duplicates:
    st.warning(
        f"Leakage: the audit found {counted(len(audited.near_duplicates), 'holdout or validation image')} "
        "that are "
        "near-copies of training images, so these bars are too high. See the pairs on the Audit page."
    )
    layout.page_link("pages/12_Audit.py")
experiments = rq.experiments(table)
names = loaders.experiment_names(cache, table)
picked = st.multiselect(
    "Experiments",
    experiments,
    default=experiments[:6],
    format_func=names.get,
    key=state.key("hold_experiments", dataset),
)
table = rq.of_experiments(table, picked)
if table.empty:
    st.warning("Pick at least one experiment.")
    st.stop()

st.subheader("Holdout accuracy by amount of training data")
bars = holdout_bars(table)
st.plotly_chart(figures.holdout_bars(bars, slice_order(table), names), key="hold_bars")
n_holdout = holdout_images(bars)
st.caption(bars_explained(n_holdout))
short = figures.legend_names(picked, names)  # as the chart's legend names them
for found in inseparable(bars):
    which = f" (experiment {short[found.experiment]} in the legend)" if len(picked) > 1 else ""
    st.warning(
        f"With {n_holdout:,} holdout images, {found.smallest} and {found.largest}{which} cannot be told "
        "apart: their intervals overlap. A larger holdout (the split controls on the Data page, or "
        "--holdout) would separate them."
    )

st.subheader("How often it is right, and how often it is sure")
t = st.slider("How sure the model must be", 5, 99, 80, 1, key="hold_threshold", format="%d%%") / 100
predictions = {
    rid: rescored[dataset, rid] if (dataset, rid) in rescored else loaders.predictions(str(cache), rid)
    for rid in rq.run_ids(table)
}
rows = threshold_rows(table, predictions, t)
st.table(pd.DataFrame(threshold_display(rows, short if len(picked) > 1 else None)), hide_index=True)
st.caption(threshold_explained(n_holdout))

st.subheader("What helps where")
everything = all_runs
left, right = st.columns([3, 2])
for backbone, mode, runs_of in rq.by_backbone_and_mode(everything):
    if rq.augmentations_vary(runs_of):
        left.markdown(f"Augmentation by amount of training data: {backbone}, {MODES_IN_WORDS[mode]}")
        left.plotly_chart(
            figures.policy_heatmap(policy_grid(runs_of)), key=state.key("hold_policy", backbone, mode)
        )
found = crossovers(everything)
for each in found:
    right.markdown(each.sentence(short))
if not rq.augmentations_vary(everything) and not found:
    st.caption(
        "Train the same slices with another augmentation policy, or fine-tuned as well as frozen, to see "
        "which helps at which amount of data (the original article found augmentation hurt at 1 and 3 "
        "images per class)."
    )

st.caption("Each run in detail (per class, a second test set, export, delete) is on the Run page.")
layout.page_link("pages/11_Run.py", describe=True)
