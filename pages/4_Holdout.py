"""Holdout: accuracy on the fixed holdout set across slices, and how much of it is confident."""

import streamlit as st

from core.answers import audit
from core.present import figures
from core.store.tables import (
    crossovers,
    holdout_bars,
    inseparable,
    policy_grid,
    slice_order,
    threshold_table,
)
from pages.common import layout, loaders, state

layout.header(
    "Holdout",
    "How accurate is each slice on the same fixed holdout images, and how "
    "often is the model confidently right?",
)
cache = state.cache_dir()
table, rescored = loaders.with_audited_variants(cache, layout.dataset_runs(cache)[0])
variants = sorted(table["dataset"].unique())  # other images or another split under the same folder
dataset = (
    st.selectbox("Holdout", variants, key=state.key("hold_dataset", state.dataset()))
    if len(variants) > 1
    else variants[0]
)
table = all_runs = table[table["dataset"] == dataset]
first = loaders.summary(str(cache), table["run_id"].iloc[0])
split = (first.config.holdout, first.config.val, first.config.split_seed)
if (audited := audit.cached(cache, first.info.fingerprint, split)) and audited.near_duplicates:
    st.warning(
        f"Leakage: the audit found {len(audited.near_duplicates)} holdout or validation image(s) that are "
        "near-copies of training images, so these bars are too high. See the pairs on the Audit page."
    )
    layout.page_link("pages/12_Audit.py")
experiments = sorted(table["experiment"].unique())
picked = st.multiselect(
    "Experiments", experiments, default=experiments[:6], key=state.key("hold_experiments", dataset)
)
table = table[table["experiment"].isin(picked)]
if table.empty:
    st.warning("Pick at least one experiment.")
    st.stop()

st.subheader("Holdout accuracy by slice")
bars = holdout_bars(table)
st.plotly_chart(figures.holdout_bars(bars, slice_order(table)), key="hold_bars")
n_holdout = int(bars["n_holdout"].iloc[0])
st.caption(
    f"Bars: means over seeds. Black whiskers: the standard deviation over seeds (which images were "
    f"labelled, how training started). Grey whiskers: the 95% interval of the holdout itself, "
    f"{n_holdout:,} images: another holdout of that size could move a bar that far."
)
for experiment, smallest, largest in inseparable(bars):
    st.warning(
        f"With {n_holdout:,} holdout images, {smallest} and {largest} of {experiment} cannot be told apart: "
        "their intervals overlap. A larger holdout (the split controls on the Data page, or --holdout) "
        "would separate them."
    )

st.subheader("Argmax accuracy against confidence")
t = st.slider("Threshold t", 0.05, 0.99, 0.8, 0.01, key="hold_threshold")
predictions = {
    rid: rescored[dataset, rid] if (dataset, rid) in rescored else loaders.predictions(str(cache), rid)
    for rid in table["run_id"]
}
thresholds = threshold_table(table, predictions, t)
# one dataset or one experiment is named above the chart: no column repeating it on every row
thresholds = thresholds.drop(columns=[c for c in ("dataset", "experiment") if thresholds[c].nunique() == 1])
numbers = [c for c in thresholds.columns if c not in ("dataset", "experiment", "slice", "seeds")]
st.table(thresholds.style.format("{:.3f}", subset=numbers), hide_index=True)
st.caption(
    "accuracy: argmax accuracy. P(true)>t: the article's reading (an image counts only if "
    "the true class gets more than t). Coverage@t: share of images whose top probability "
    "is at least t; selective@t: accuracy on those images alone. Confidence depends on the "
    "training recipe as well as on the data: the head's L2 penalty (as in logistic "
    "regression) is what keeps a 1-image-per-class model from being confident about most "
    "images."
)

st.subheader("What helps where")
everything = all_runs
left, right = st.columns([3, 2])
for (backbone, mode), runs_of in everything.groupby(["backbone", "mode"]):
    if runs_of["aug"].nunique() > 1:
        left.markdown(f"Augmentation by slice, {backbone} · {mode}")
        left.plotly_chart(
            figures.policy_heatmap(policy_grid(runs_of)), key=state.key("hold_policy", backbone, mode)
        )
found = crossovers(everything)
for each in found:
    right.markdown(each.sentence())
if everything["aug"].nunique() < 2 and not found:
    st.caption(
        "Train the same slices with another augmentation policy, or fine-tuned as well as frozen, to see "
        "which helps at which amount of data (the original article found augmentation hurt at 1 and 3 "
        "images per class)."
    )

st.caption("Each run in detail (per class, a second test set, export, delete) is on the Run page.")
layout.page_link("pages/11_Run.py", describe=True)
