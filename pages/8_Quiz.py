"""Quiz: the original article's question, asked of a room on its own data before the answer is shown."""

import pandas as pd
import streamlit as st

from core.answers import budget
from core.base.errors import UserError
from core.store import runs
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
experiment = st.selectbox("Experiment", chosen.experiments, key="quiz_experiment")
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
    words = (
        f"{q.images_per_class:,.0f} image{'s' if q.images_per_class != 1 else ''} per class ({share} of the "
        f"pool, slice {q.slice})"
    )
    guesses[q.slice] = st.number_input(words, 0, 100, 50, key=state.key("quiz_guess", q.slice)) / 100
if st.button("Reveal", type="primary", key="quiz_reveal"):
    st.session_state["quiz_revealed"] = experiment
if st.session_state.get("quiz_revealed") != experiment:
    st.stop()

confident = "confident and right (P(true) > 0.8)"
answers = pd.DataFrame(
    [
        {
            "slice": q.slice,
            "your guess": guesses[q.slice],
            "argmax accuracy": q.accuracy,
            confident: q.confident,
            "runs": q.runs,
        }
        for q in questions
    ]
)
st.dataframe(
    answers,
    hide_index=True,
    column_config={
        c: st.column_config.ProgressColumn(c, min_value=0, max_value=1, format="%.2f")
        for c in ("your guess", "argmax accuracy", confident)
    },
)
st.caption(
    "Argmax: the top class is right. Confident and right: the true class also gets more than 0.8, the "
    "bar for handing a prediction to a machine without a person checking it. Means over the slice's runs "
    "on the same fixed holdout."
)
