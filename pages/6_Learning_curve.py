"""Learning curve: how many labelled images per class a target accuracy takes, and how far to trust it."""

import streamlit as st

from core.answers import budget, remedy
from core.base.errors import UserError
from core.base.intervals import share
from core.present import figures
from core.serving import jobs
from core.store import runs
from core.store.config import Split, default_config
from pages.common import layout, loaders, pickers, signin, state

layout.header(
    "Learning curve",
    "How many labelled images per class does the accuracy I need take, and how "
    "far can I trust the answer on my own data?",
)
POINT_COLUMNS = (
    "slice",
    "images per class",
    "accuracy",
    "runs",
    "spread over sample seeds",
    "over training seeds",
)
cache, WRITES = state.cache_dir(), signin.locked()
data = state.dataset()


def queue(configs: list, split: Split | None = None) -> None:
    """Queue runs; with ``split``, it becomes the split new runs use and this page shows."""
    try:
        st.session_state["curve_message"] = jobs.submit_and_tally(cache, configs)
    except UserError as error:
        st.session_state["curve_message"] = f"error: {error}"
        return
    if split is not None:
        state.set_split(split)


def queue_curve(base) -> None:
    try:
        queue(budget.curve_grid(base, cache))
    except UserError as error:
        st.session_state["curve_message"] = f"error: {error}"


if message := st.session_state.pop("curve_message", None):
    (st.error if message.startswith("error") else st.success)(message)
ids = runs.complete_ids(cache)
split = state.split()
try:
    split = pickers.split(loaders.splits_with_runs(str(cache), data, ids), split, data)
    chosen = loaders.selection(str(cache), data, None, ids, split)
except UserError as error:
    st.info(f"{error}. Or queue it here:")
    st.button(
        "Queue a learning curve (frozen EfficientNet-Lite0, sample seeds 1-3)",
        key="curve_queue",
        on_click=queue_curve,
        args=(default_config(data, split),),
        type="primary",
        **WRITES,
    )
    st.stop()
experiment = st.selectbox(
    "Experiment",
    chosen.experiments,
    format_func=lambda label: state.experiment_name(chosen, label),
    key="curve_experiment",
    help="Runs that differ in any setting are separate curves; the longest comes first",
)
try:
    analysis = loaders.analysis(cache, data, experiment, split)
except UserError as error:
    st.warning(str(error))
    st.button(
        "Queue the learning-curve slices for this experiment",
        key="curve_queue_more",
        on_click=queue_curve,
        args=(chosen.summaries[0].config,),
        **WRITES,
    )
    st.stop()

left, right = st.columns(2)
target_percent = left.number_input(
    "Target holdout accuracy (%)",
    1.0,
    99.0,
    100 * analysis.suggested_target(),
    1.0,
    key="curve_target",
    format="%.1f",
)
target = round(target_percent / 100, 4)
top = analysis.points[-1].images_per_class
at = right.number_input("Accuracy expected at images per class", 1, 10_000_000, int(top * 4), key="curve_at")
report = budget.report(analysis, target, float(at))
needed, level = report.needed, report.level
if report.contradicted:
    st.warning(report.contradicted)
elif needed.estimate:
    st.success(
        f"To reach **{share(target)}**: about **{budget.stated(needed.estimate, level, ',.0f')}** images per "
        f"class (now {top:,.0f})."
    )
else:
    st.warning(f"To reach {share(target)}: no estimate. {needed.reason}")
if step := remedy.next_step(analysis):
    st.info(step.sentence)
    st.button(
        step.button, key="curve_next_step", **WRITES, on_click=queue, args=(list(step.configs), step.split)
    )
n, answer = report.accuracy_at
if answer.estimate:
    st.info(f"At {n:,.0f} images per class: **{budget.stated(answer.estimate, level)}**")
elif answer.reason != needed.reason:  # the same reason is said once, above
    st.info(f"At {n:,.0f} images per class: no estimate. {answer.reason}")
for caveat in budget.caveats(report):
    st.warning(caveat)
st.plotly_chart(
    figures.learning_curve(report.points, report.band, target, report.standing, level, report.reliable_up_to),
    key="curve_chart",
)
st.caption(budget.intervals_explained(report.band, level))

st.subheader("How far to trust it: the backtest on this data")
st.markdown(budget.backtest_sentence(report.backtest, level))
layout.lines_table(
    budget.backtest_lines(report.backtest),
    ("images per class", "measured", "predicted", f"{level:.0%} interval", "inside"),
)
with st.expander("Curve families: the point and their weights in the interval"):
    layout.lines_table(
        budget.family_lines(report.families), ("family", "weight", "mean miss on this data's smaller slices")
    )
with st.expander("Measured points"):
    layout.lines_table(
        budget.point_lines(report.points),
        ("slice", "images per class", "accuracy", "runs", "spread over sample seeds", "over training seeds"),
    )
st.download_button(
    "Download this as a report (one HTML file, opens offline)",
    data=loaders.html_report(cache, data, experiment, target, split),
    file_name="how-much-data.html",
    mime="text/html",
    key="curve_report",
)
