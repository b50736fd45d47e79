"""Next batch: does choosing the images beat picking them at random, how many this round, which ones."""

import time

import pandas as pd
import streamlit as st

from core.answers import rounds
from core.answers.nextbatch.simulate import Settings
from core.answers.nextbatch.strategies import DEFAULT, STRATEGIES, strategy_named
from core.base.errors import UserError
from core.present import figures
from core.serving import simulations
from core.store.config import parse_seeds
from pages.common import layout, loaders, next_batch, signin, state

layout.header(
    "Next batch",
    "Does choosing which images to label beat picking them at random on my data, how many should "
    "this round add, and which images?",
)
cache, data = state.cache_dir(), state.dataset()
try:
    analysis = loaders.analysis(cache, data, None, state.split())
except UserError as error:
    st.info(f"{error}. The Learning curve page queues one.")
    layout.page_link("pages/6_Learning_curve.py", describe=True)
    st.stop()
config = analysis.selection.summaries[0].config

st.subheader("Does a smarter choice beat random on your data?")
st.caption(
    "The backtest hides the labels of your training images, starts from a few per class, and "
    "lets each strategy pick the next rounds; every round is scored on the same holdout images."
)
columns = st.columns(4)
start = columns[0].number_input("Start, labels per class", 1, 1000, 1, key="nb_start")
batch = columns[1].number_input("Each round, labels per class", 1, 1000, 10, key="nb_batch")
count = columns[2].number_input("Rounds", 1, 50, 3, key="nb_rounds")
seeds_text = columns[3].text_input("Repeats (seeds)", "1,2", key="nb_seeds", help="more seeds: tighter bands")
chosen = st.multiselect(
    "Strategies (random is always one)",
    STRATEGIES,
    list(STRATEGIES),
    format_func=strategy_named,
    key="nb_strategies",
)
try:
    settings = Settings(tuple(chosen), int(start), int(batch), int(count), tuple(parse_seeds(seeds_text)))
except UserError as error:
    st.error(str(error))
    st.stop()
request = simulations.Request(
    data,
    analysis.selection.dataset.fingerprint,
    settings,
    config.backbone,
    config.image_size,
    config.split,
)
key = request.key()
found = simulations.status(cache, key)


@st.fragment(run_every=1.0)
def follow() -> None:
    """Progress, time left and Cancel, redrawn every second; the page redraws once it ends."""
    now = simulations.status(cache, key)
    if not now.running:
        st.rerun()
    left = now.seconds_left(time.time())
    about = "estimating the time left" if left is None else f"about {left:,.0f} s left"
    done, total = (now.stage.done, now.stage.total) if now.stage else (0, settings.replays)
    st.progress(now.fraction, text=f"{done} of {total} rounds replayed, {about}")
    st.button("Cancel", key="nb_cancel", **signin.locked(), on_click=simulations.cancel, args=(cache, key))


if found.running:
    follow()
elif simulation := simulations.load(found):
    st.plotly_chart(figures.next_batch_backtest(simulation), key="nb_chart")
    st.markdown(f"**{simulation.verdict()}**")
    st.dataframe(pd.DataFrame(next_batch.backtest_rows(simulation)), hide_index=True, key="nb_backtest")
else:
    if found.cancelled:
        st.warning("Stopped: the backtest was cancelled before it finished, and nothing was kept.")
    elif found.error:
        st.error(f"The backtest stopped: {found.error}")
    st.caption(f"{settings.replays} rounds to replay, a few seconds each.")
    if st.button("Run the backtest", key="nb_run", type="primary", **signin.locked()):
        simulations.start(cache, request)
        st.rerun()

st.subheader("How many this round")
# the Learning curve page's default, so the two pages never answer for different targets
target = st.number_input(
    "Target holdout accuracy (%)",
    1.0,
    99.0,
    100 * analysis.suggested_target(),
    1.0,
    key="nb_target",
    format="%.1f",
)
step = st.number_input("Labels per class each round (0: double each round)", 0, 100_000, 0, key="nb_step")
plan = rounds.plan(analysis, target / 100, int(step) or None)
st.caption(f"Rule: {plan.assumptions.rule}. Intervals: {analysis.level:.0%}.")
if plan.reason:
    st.info(plan.reason)
else:
    if plan.caveat:
        st.warning(plan.caveat)
    st.dataframe(pd.DataFrame(next_batch.plan_rows(plan)), hide_index=True, key="nb_plan")

next_batch.which_images(cache, data, config, [DEFAULT, *(s for s in STRATEGIES if s != DEFAULT)])
next_batch.labels_back(cache, data)
