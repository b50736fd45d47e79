"""Trust: are the probabilities probabilities, and how much can be handed to a machine?"""

import streamlit as st

from core.answers.calibration import against, gap
from core.base.errors import UserError
from core.present import figures
from core.store import runs
from core.store.tables import picker_labels
from pages.common import layout, loaders, state

layout.header(
    "Trust",
    "Are the model's probabilities honest, and at the accuracy I need, how much can it decide "
    "alone and how much goes to a person?",
)
cache = state.cache_dir()
table, _ = layout.dataset_runs(cache)
labels = picker_labels(table, state.technical())  # newest first
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="trust_run")
try:
    calibration = loaders.calibration(str(cache), run_id)
except UserError as error:
    st.error(str(error))
    st.stop()

st.subheader("Are its probabilities honest?")
cols = st.columns(2)
for column, title, value in (
    (cols[0], "Calibration error as trained", calibration.ece),
    (cols[1], "Calibration error after rescaling", calibration.ece_scaled),
):
    column.metric(title, f"{value.estimate:.1%}")
    column.caption(f"95% interval {value.low:.1%} to {value.high:.1%}")
st.markdown(
    f"As trained, the model is **{calibration.direction}**: when it says it is sure, it is right "
    f"{'less' if calibration.direction == 'over-confident' else 'more'} often than it claims."
    if calibration.direction != "calibrated within the interval"
    else "As trained, the model is **calibrated within the interval**: no direction can be claimed."
)
(st.warning if calibration.ece_scaled.estimate > calibration.ece.estimate else st.markdown)(
    calibration.scaling_words()
)
st.plotly_chart(figures.reliability(calibration.bins, calibration.bins_scaled), key="trust_reliability")
st.caption(
    "Calibration error: the average gap between how sure the model is and how often it is right, over "
    f"{calibration.n} holdout images in {calibration.n_bins} equal-width bins, with a bootstrap 95% "
    "interval. The number in a bar is its images; its whisker, the 95% interval of its accuracy (a bar "
    "of a few images says little). "
    "The rescaling divides the model's scores by one number fitted on the validation set, never on the "
    f"holdout it is measured on; it leaves accuracy as it was ({calibration.accuracy:.1%} before, "
    f"{calibration.accuracy_scaled:.1%} after)."
)

st.subheader("Hand it to a machine, or to a person?")
summary = runs.load(cache, run_id).summary
wanted = st.number_input(
    "Accuracy wanted on the predictions the model makes alone (%)",
    50.0,
    99.9,
    100 * loaders.suggested_target(cache, summary.config),
    1.0,
    format="%.1f",
    key="trust_target",
    help="At first the target the Learning curve and Present pages use for this run's experiment",
)
target = wanted / 100
plan = loaders.threshold(str(cache), run_id, target)
if plan.threshold is None or plan.automated_share is None:
    st.warning(f"No threshold: {plan.reason}.")
else:
    k, a, h = plan.kept_accuracy, plan.automated_share, plan.human_share
    cols = st.columns(4)
    cols[0].metric("How sure it must be", f"{plan.threshold:.0%}")
    cols[0].caption("chosen on the validation set")
    short = gap(k.estimate, target) if k.estimate < target else None  # fits the column
    for column, title, value, shown, delta in (
        (cols[1], "Accuracy of what it decides", k, against(k.estimate, target), short),
        (cols[2], "Decided by the model", a, f"{a.estimate:.0%}", None),
        (cols[3], "Left to a person", h, f"{h.estimate:.0%}", None),
    ):
        column.metric(title, shown, delta)
        column.caption(f"95% interval {value.low:.0%} to {value.high:.0%}")
    st.markdown(plan.holdout_words(calibration.n))
    st.caption(
        f"The threshold is the lowest confidence at which the model's own decisions reached {target:.1%} "
        f"accuracy on the {calibration.n_val} validation images; it is then measured on the holdout, which "
        "played no part in choosing it. Intervals: Wilson, 95%."
    )

st.subheader("How both improve with more labels")
try:
    points = loaders.trust_by_size(str(cache), summary.config.data, run_id, target, runs.complete_ids(cache))
except UserError as error:
    st.info(str(error))
    st.stop()
st.plotly_chart(figures.trust_by_size(points, target), key="trust_by_size")
st.caption(
    "Means over each amount's runs of this run's experiment; error bars: the holdout's 95% intervals "
    "(means over the runs). An amount whose runs find no threshold for the target on their validation "
    "set has no point on the right."
)
