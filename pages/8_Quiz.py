"""Quiz: the original article's question, asked of a room on its own data before the answer is shown."""

import pandas as pd
import streamlit as st

from core.answers import budget
from core.base.errors import UserError
from core.store import runs
from core.store.tables import percent
from pages.common import layout, loaders, state

layout.header(
    "Quiz", "Before you see the numbers: how accurate do you think the model is with this much data?"
)
cache = state.cache_dir()
data = state.dataset()
try:
    chosen = loaders.selection(str(cache), data, None, runs.complete_ids(cache))
except UserError as error:
    st.info(f"{error}. The quiz reads cached runs only: the Home page's original grid gives it every slice.")
    st.stop()
experiment = st.selectbox(
    "Experiment",
    chosen.experiments,
    format_func=lambda label: state.experiment_name(chosen, label),
    key="quiz_experiment",
)
questions = budget.quiz(loaders.selection(str(cache), data, experiment, runs.complete_ids(cache)))
if len(questions) < 2:
    st.warning("The quiz needs runs of at least two slices of this experiment.")
    st.stop()

st.markdown(
    "Type your guess of the holdout accuracy for each amount of labelled data (0 to 100%). The "
    "answers stay hidden until you press Reveal."
)
guesses = {}
for q in questions:
    share = f"{q.share:.1%}" if q.share < 0.05 else f"{q.share:.0%}"
    plural = "s" if q.images_per_class != 1 else ""
    words = f"{q.images_per_class:,.0f} image{plural} per class ({share} of the pool)"
    guesses[q.slice] = st.number_input(f"{words}, in %", 0, 100, 50, key=state.key("quiz_guess", q.slice))
if st.button("Reveal", type="primary", key="quiz_reveal"):
    st.session_state["quiz_revealed"] = experiment
if st.session_state.get("quiz_revealed") != experiment:
    st.stop()


right, sure = "right (95% interval)", "right and at least 80% sure (95% interval)"
answers = pd.DataFrame(
    [
        {
            "images per class": f"{q.images_per_class:,.0f}",
            "your guess": guesses[q.slice],
            "measured": 100 * q.accuracy.estimate,
            right: percent(q.accuracy),
            sure: percent(q.confident),
            "runs": q.runs,
        }
        for q in questions
    ]
)
st.dataframe(
    answers,
    hide_index=True,
    column_config={
        c: st.column_config.ProgressColumn(c, min_value=0, max_value=100, format="%.0f%%")
        for c in ("your guess", "measured")
    },
)
st.caption(
    "Right: the model's most likely class is the true one. Right and at least 80% sure: it also gives "
    "the true class more than 80% probability, the bar for letting a machine decide without a person "
    "checking. Means over the runs of each amount, all scored on the same fixed holdout; the intervals "
    "say how far that holdout's size lets the number move."
)
