"""Label next: which classes more labels pay most in, and a check of that suggestion by training it."""

import pandas as pd
import streamlit as st

from core.answers import budget
from core.base.errors import UserError
from core.present import figures
from core.serving import jobs
from core.store import runs
from pages.common import layout, loaders, state

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
experiment = st.selectbox("Experiment", chosen.experiments, key="label_experiment")
selection = loaders.selection(str(cache), data, experiment, runs.complete_ids(cache))
st.plotly_chart(figures.per_class_curves(loaders.class_curves(selection)), key="label_curves")

slices = [p.slice for p in budget.curve_points(selection)]
left, right = st.columns(2)
base = left.selectbox(
    "From the labels of slice",
    slices[::-1],
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
)
st.markdown(
    f"Predicted gain in holdout accuracy: **{budget.points_stated(allocation.expected_gain)}** "
    f"as suggested, **{budget.points_stated(allocation.even_gain)}** spread evenly ({budget.LEVEL:.0%} "
    "intervals)."
)
for note in allocation.notes:
    st.caption(note)

if planning:
    st.info(
        "To check a suggestion before paying for labels, pick a smaller slice above: the tool then shares "
        "labels it already has and trains both allocations."
    )
    st.stop()
plan = budget.check_plan(selection, base, int(label_count))
st.subheader("Check it: train both allocations")
if plan.suggested == plan.even:
    st.info("The curves see nothing to prefer from this slice: the suggestion is the even split.")
if st.button(
    f"Train the suggested and the even allocation ({2 * len(plan.sample_seeds)} runs)",
    key="label_check",
    type="primary",
):
    st.success(jobs.submit_and_tally(cache, plan.configs(selection)))
results = pd.DataFrame(budget.check_results(selection, plan))
st.dataframe(
    results,
    hide_index=True,
    column_config={
        c: st.column_config.NumberColumn(format="%+.3f")
        for c in results.columns
        if "gain" in c or "predicted" in c
    },
)
st.caption(
    f"Measured gain: mean holdout accuracy over the sample seeds trained so far, minus slice {base}'s on "
    "the same seeds. Runs appear here as the Train page finishes them."
)
