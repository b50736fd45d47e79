"""Label next: which classes more labels pay most in, and a check of that suggestion by training it."""

import pandas as pd
import streamlit as st

from core.answers import budget
from core.base import words
from core.base.errors import UserError
from core.present import figures
from core.serving import jobs
from core.store import runs
from pages.common import layout, loaders, signin, state

layout.header(
    "Label next",
    "With a budget of B more labels, which classes should get them, and does the "
    "suggestion beat spreading them evenly when it is really trained?",
)
cache = state.cache_dir()
data = state.dataset()
try:
    chosen = loaders.selection(str(cache), data, None, runs.complete_ids(cache))
except UserError as error:
    st.info(f"{error}. The Learning curve page queues one.")
    layout.page_link("pages/6_Learning_curve.py", describe=True)
    st.stop()
experiment = st.selectbox(
    "Experiment",
    chosen.experiments,
    format_func=lambda label: state.experiment_name(chosen, label),
    key="label_experiment",
)
selection = loaders.selection(str(cache), data, experiment, runs.complete_ids(cache))
st.plotly_chart(figures.per_class_curves(loaders.class_curves(selection)), key="label_curves")

per_class = {p.slice: p.images_per_class for p in budget.curve_points(selection)}
slices = list(per_class)
named = {
    text: f"{words.per_class(n)} {'image' if n == 1 else 'images'} per class ({text})"
    for text, n in per_class.items()
}
left, right = st.columns(2)
base = left.selectbox(
    "Start from the labels of",
    slices[::-1],
    format_func=named.get,
    key="label_base",
    help="The largest slice plans new labels; a smaller one lets you check the plan by training it",
)
planning = base == slices[-1]
label_count = right.number_input(
    "More labels to share", 1, 1_000_000, 10 * len(selection.classes), key="label_budget"
)
try:
    allocation = loaders.allocation(selection, int(label_count), None if planning else base)
except UserError as error:
    st.error(str(error))
    st.stop()
current = loaders.base_counts(selection, base)
st.dataframe(
    pd.DataFrame(
        {
            "class": list(current),
            "labels now": list(current.values()),
            "suggested extra": [allocation.extra[c] for c in current],
            "even extra": [allocation.even_extra[c] for c in current],
        }
    ),
    hide_index=True,
    key="label_shares",
)
st.markdown(budget.gain_sentence(allocation))
for note in allocation.notes:
    st.markdown(f"- {note}")

if planning:
    st.info(
        "To check a suggestion before paying for labels, pick a smaller slice above: the tool then shares "
        "labels it already has and trains both allocations."
    )
    st.stop()
try:
    plan = budget.check_plan(selection, base, int(label_count))
except UserError as error:
    st.info(f"Nothing to check from here: {error}.")
    st.stop()
same = plan.suggested == plan.even
st.subheader("Check it: train the allocation" if same else "Check it: train both allocations")
if same:
    st.info("The suggestion is the even split here, so the check trains that one allocation.")
configs = plan.configs(selection)
if not configs:
    st.caption("Every run of this check is trained.")
elif st.button(
    f"Train {'the even split' if same else 'the suggested and the even allocation'} ({len(configs)} runs)",
    key="label_check",
    type="primary",
    **signin.locked(),
):
    st.success(jobs.submit_and_tally(cache, configs))
results = budget.check_results(selection, plan)[1 if same else 0 :]  # one row when both are one slice
st.dataframe(
    pd.DataFrame(
        {
            "allocation": [r.allocation for r in results],
            "predicted gain": [budget.points_stated(r.predicted) for r in results],
            "measured gain": [budget.points_stated(r.measured) for r in results],
            "measured against the forecast": [r.verdict for r in results],
            "runs trained": [f"{r.runs} of {r.planned}" for r in results],
        }
    ),
    hide_index=True,
    key="label_results",
)
st.caption(
    f"Measured gain: how much holdout accuracy rose over the {words.per_class(per_class[base])} images "
    f"per class it started from, on the same image samples, averaged over the samples trained so far, in "
    f"points with its {budget.LEVEL:.0%} interval over those samples. Runs appear here as the Train page "
    "finishes them."
)
