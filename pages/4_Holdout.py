"""Holdout: accuracy on the fixed holdout set across slices, and how much of it is confident."""

import pandas as pd
import streamlit as st

from core import figures
from core.tables import crossover, holdout_bars, policy_grid, run_label, slice_order, threshold_table
from pages.common import layout, loaders, state

layout.header(
    "Holdout",
    "How accurate is each slice on the same fixed holdout images, and how "
    "often is the model confidently right?",
)
cache = state.cache_dir()
table = all_runs = layout.runs_or_stop(cache)

datasets = sorted(table["dataset"].unique())
dataset = st.selectbox("Dataset", datasets, key="hold_dataset") if len(datasets) > 1 else datasets[0]
table = table[table["dataset"] == dataset]
experiments = sorted(table["experiment"].unique())
picked = st.multiselect("Experiments", experiments, default=experiments[:6], key="hold_experiments")
table = table[table["experiment"].isin(picked)]
if table.empty:
    st.warning("Pick at least one experiment.")
    st.stop()

st.subheader("Holdout accuracy by slice")
st.plotly_chart(figures.holdout_bars(holdout_bars(table), slice_order(table)), key="hold_bars")
st.caption("Bars are means over seeds; error bars are the standard deviation over seeds.")

st.subheader("Argmax accuracy against confidence")
t = st.slider("Threshold t", 0.05, 0.99, 0.8, 0.01, key="hold_threshold")
predictions = {rid: loaders.predictions(str(cache), rid) for rid in table["run_id"]}
thresholds = threshold_table(table, predictions, t)
numbers = [c for c in thresholds.columns if c not in ("dataset", "experiment", "slice", "seeds")]
st.table(thresholds.style.format("{:.3f}", subset=numbers).hide(axis="index"))
st.caption(
    "accuracy: argmax accuracy. P(true)>t: the article's reading (an image counts only if "
    "the true class gets more than t). Coverage@t: share of images whose top probability "
    "is at least t; selective@t: accuracy on those images alone. Confidence depends on the "
    "training recipe as well as on the data: the head's L2 penalty (as in logistic "
    "regression) is what keeps a 1-image-per-class model from being confident about most "
    "images."
)

st.subheader("One run in detail")
labels = {r.run_id: run_label(r) for r in table.sort_values("slice_order").itertuples()}
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="hold_run")
detail = loaders.summary(str(cache), run_id)
left, right = st.columns([2, 3])
left.dataframe(
    pd.DataFrame(
        {
            "class": list(detail.holdout.per_class_accuracy),
            "accuracy": list(detail.holdout.per_class_accuracy.values()),
        }
    ),
    hide_index=True,
    column_config={"accuracy": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")},
)
right.plotly_chart(figures.confusion(detail.holdout.confusion, detail.classes), key="hold_confusion")

st.subheader("What helps where")
everything = all_runs[all_runs["dataset"] == dataset]
left, right = st.columns([3, 2])
for (backbone, mode), runs_of in everything.groupby(["backbone", "mode"]):
    if runs_of["aug"].nunique() > 1:
        left.markdown(f"Augmentation by slice, {backbone} · {mode}")
        left.plotly_chart(figures.policy_heatmap(policy_grid(runs_of)), key=f"hold_policy_{backbone}_{mode}")
frozen = sorted(everything[everything["mode"] == "frozen"]["experiment"].unique())
tuned = sorted(everything[everything["mode"] == "finetune"]["experiment"].unique())
for baseline in frozen:
    for challenger in tuned:
        where = crossover(everything, baseline, challenger)
        right.markdown(
            f"**{challenger}** beats **{baseline}** "
            + (f"from slice **{where}** on." if where else "at no slice measured (or not from any slice on).")
        )
if everything["aug"].nunique() < 2 and not (frozen and tuned):
    st.caption(
        "Train the same slices with another augmentation policy, or fine-tuned as well as frozen, to see "
        "which helps at which amount of data (the original article found augmentation hurt at 1 and 3 "
        "images per class)."
    )
