"""Trust: are the probabilities probabilities, and how much can be handed to a machine?"""

import streamlit as st

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

st.subheader("Calibration")
cols = st.columns(4)
cols[0].metric(
    "ECE as trained",
    f"{calibration.ece.estimate:.3f}",
    help=f"95% interval {calibration.ece.low:.3f} to {calibration.ece.high:.3f}",
)
cols[1].metric(
    "ECE, scaled",
    f"{calibration.ece_scaled.estimate:.3f}",
    delta=f"{calibration.ece_scaled.estimate - calibration.ece.estimate:+.3f}",
    delta_color="inverse",
    help=f"95% interval {calibration.ece_scaled.low:.3f} to {calibration.ece_scaled.high:.3f}",
)
cols[2].metric(
    "Temperature",
    f"{calibration.temperature:.2f}",
    help="Above 1 softens an over-confident model, below 1 sharpens an under-confident one",
)
st.markdown(
    f"As trained, the model is **{calibration.direction}**: its probabilities are on average "
    f"{'higher' if calibration.direction == 'over-confident' else 'lower'} than how often it is right."
    if calibration.direction != "calibrated within the interval"
    else "As trained, the model is **calibrated within the interval**: no direction can be claimed."
)
st.plotly_chart(figures.reliability(calibration.bins, calibration.bins_scaled), key="trust_reliability")
st.caption(
    f"ECE over {calibration.n} holdout images in {calibration.n_bins} equal-width bins, with a bootstrap "
    "95% interval. The temperature is fitted on the fixed validation set, never on the holdout it is "
    f"measured on; it leaves accuracy as it was ({calibration.accuracy:.3f} before, "
    f"{calibration.accuracy_scaled:.3f} after)."
)

st.subheader("Hand it to a machine, or to a person?")
target = st.number_input(
    "Accuracy wanted on the predictions the model makes alone",
    0.5,
    0.999,
    0.95,
    0.01,
    format="%.3f",
    key="trust_target",
)
plan = loaders.threshold(str(cache), run_id, target)
if plan.threshold is None or plan.automated_share is None:
    st.warning(f"No threshold: {plan.reason}.")
else:
    k, a, h = plan.kept_accuracy, plan.automated_share, plan.human_share
    cols = st.columns(4)
    cols[0].metric("Confidence threshold", f"{plan.threshold:.3f}")
    cols[1].metric(
        "Accuracy of what it decides", f"{k.estimate:.1%}", help=f"95% interval {k.low:.1%} to {k.high:.1%}"
    )
    cols[2].metric(
        "Decided by the model", f"{a.estimate:.0%}", help=f"95% interval {a.low:.1%} to {a.high:.1%}"
    )
    cols[3].metric("Left to a person", f"{h.estimate:.0%}", help=f"95% interval {h.low:.1%} to {h.high:.1%}")
    st.caption(
        "The threshold is chosen on the validation set (the lowest confidence at which the kept images "
        f"reach {target:.1%} there: {plan.val_kept_accuracy:.1%} of {plan.val_automated_share:.0%}), then "
        "measured on the holdout, which played no part in choosing it. Intervals: Wilson, 95%."
    )

st.subheader("How both improve with more labels")
summary = runs.load(cache, run_id).summary
try:
    points = loaders.trust_by_size(str(cache), summary.config.data, run_id, target, runs.complete_ids(cache))
except UserError as error:
    st.info(str(error))
    st.stop()
st.plotly_chart(figures.trust_by_size(points, target), key="trust_by_size")
st.caption(
    "Means over each slice's runs of this run's experiment. A slice whose runs find no threshold for the "
    "target on their validation set has no point on the right."
)
