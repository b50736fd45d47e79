"""Train: queue runs for the background worker and watch them train."""

import dataclasses
from datetime import datetime

import pandas as pd
import streamlit as st

from core.base.errors import UserError
from core.base.progress import Stage
from core.data.augment import POLICIES
from core.data.splits import ORIGINAL_SLICES
from core.models.backbones import get_spec, list_backbones, weights_available
from core.present import figures
from core.serving import jobs
from core.store import runs
from core.store.config import MODES, SOLVERS, RunConfig, grid, parse_seeds, parse_slices, uses_features
from core.store.record import read_metrics
from pages.common import layout, loaders, state

layout.header(
    "Train",
    "Queue runs on the background worker; the page stays responsive and "
    "nothing is lost when the browser closes.",
)
cache = state.cache_dir()
st.markdown(f"Dataset: `{state.dataset()}` (change it on the Data page)")


def _backbone_label(name: str) -> str:
    spec = get_spec(name)
    if spec.weights == "none":
        return f"{name} (scratch only)"
    return f"{name} ({'weights ready' if weights_available(spec) else 'downloads weights'})"


DEFAULTS = {
    "train_slices": ["1/class", "3/class", "5%", "20%"],
    "train_extra": "",
    "train_backbone": list_backbones()[0],
    "train_mode": MODES[0],
    "train_aug": POLICIES[0],
    "train_seeds": "1",
    "train_epochs": 0,
    "train_lr": 0.0,
    "train_batch": 0,
    "train_size": 0,
    "train_solver": SOLVERS[0],
}
SOLVER_LABELS = {
    "lbfgs": "L-BFGS to convergence, C chosen on validation",
    "adamw": "AdamW epochs (the heads of a grid stacked in one fit)",
}


def _number(low: float, high: float):
    return lambda value: isinstance(value, int | float) and low <= value <= high


state.form_values(
    "train",
    DEFAULTS,
    {
        "train_slices": lambda value: isinstance(value, list) and set(value) <= set(ORIGINAL_SLICES),
        "train_extra": lambda value: isinstance(value, str),
        "train_backbone": lambda value: value in list_backbones(),
        "train_mode": lambda value: value in MODES,
        "train_aug": lambda value: value in POLICIES,
        "train_seeds": lambda value: isinstance(value, str),
        "train_epochs": _number(0, 500),
        "train_lr": _number(0.0, 1.0),
        "train_batch": _number(0, 1024),
        "train_size": _number(0, 1024),
        "train_solver": lambda value: value in SOLVERS,
    },
)
with st.form("train_form"):
    slices = st.multiselect("Slices", list(ORIGINAL_SLICES), key="train_slices")
    extra = st.text_input("More slices (comma-separated, e.g. 10/class, 12.5%)", key="train_extra")
    cols = st.columns(4)
    backbone = cols[0].selectbox(
        "Backbone", list_backbones(), format_func=_backbone_label, key="train_backbone"
    )
    mode = cols[1].selectbox("Mode", MODES, key="train_mode")
    aug = cols[2].selectbox("Augmentation", POLICIES, key="train_aug")
    seeds = cols[3].text_input("Seeds", key="train_seeds")
    with st.expander("Hyper-parameters (0 = the default for the mode)"):
        cols = st.columns(4)
        epochs = cols[0].number_input("Epochs", 0, 500, key="train_epochs")
        lr = cols[1].number_input("Learning rate", 0.0, 1.0, format="%.4f", key="train_lr")
        batch = cols[2].number_input("Batch size", 0, 1024, key="train_batch")
        size = cols[3].number_input("Image size (px)", 0, 1024, key="train_size")
        solver = st.radio(
            "Head on cached features (frozen backbone, no augmentation)",
            SOLVERS,
            format_func=SOLVER_LABELS.get,
            key="train_solver",
            horizontal=True,
        )
    launch = st.form_submit_button("Launch", type="primary")

if launch:
    try:
        chosen = list(dict.fromkeys(slices + parse_slices(extra)))
        seed_list = parse_seeds(seeds, flag="Seeds")
        if not chosen or not seed_list:
            raise UserError("choose at least one slice and one seed")
        split = state.split()
        base = RunConfig(
            data=state.dataset(),
            backbone=backbone,
            mode=mode,
            slice=chosen[0],
            aug=aug,
            epochs=epochs or None,
            lr=lr or None,
            batch_size=batch or None,
            image_size=size or None,
            holdout=split.holdout,
            val=split.val,
            split_seed=split.seed,
        )
        if uses_features(base):  # the solver applies to a head on cached features only
            base = dataclasses.replace(base, solver=solver)
        state.remember_form("train", DEFAULTS)
        known = {job.id for job in jobs.list_jobs(cache)}
        st.success(jobs.tally(jobs.submit(cache, grid(base, chosen, seed_list)), known))
    except UserError as error:
        st.error(str(error))


def _active_panel(job: jobs.Job) -> None:
    folder = runs.partial_dir(cache, job.run_id)
    c = job.config
    st.markdown(
        f"**Training** `{job.run_id}`: {c.backbone} · {c.mode} · aug {c.aug} · "
        f"slice {c.slice} · seed {c.seed}"
    )
    doing = jobs.activity(cache, job)
    if doing is None:
        st.progress(0.0, text="Starting…")
    elif isinstance(doing, Stage):
        st.progress(doing.fraction or 0.0, text=f"Preparing, {doing.describe()}")
        st.caption(
            "Checking, decoding and feature extraction happen once per dataset, image size and backbone; "
            "every later run on them starts training at once."
        )
    else:
        st.progress(doing.fraction, text=doing.describe())
        live = read_metrics(folder.metrics)
        if not live.empty:
            left, right = st.columns(2)
            name = {f"{c.slice} s{c.seed}": live}
            left.plotly_chart(figures.curves(name, "loss"), key=state.key("live_loss", job.run_id))
            right.plotly_chart(figures.curves(name, "acc"), key=state.key("live_acc", job.run_id))
    if jobs.cancelling(cache, job):
        st.caption(
            "Cancelled: it stops at its next step (trained with others, it is recorded when they finish)."
        )
    elif st.button("Cancel this run", key=state.key("cancel", job.id)):
        jobs.cancel(cache, job.id)
        st.toast("Cancelling…")


def _training_table(items: list[jobs.Job]) -> pd.DataFrame:
    """Runs in training beyond the first few: one row each, with its progress."""
    rows = []
    for j in items:
        doing = jobs.activity(cache, j)
        now = doing.describe() if doing is not None else "starting"
        rows.append(
            {
                "slice": j.config.slice,
                "seed": j.config.seed,
                "progress": (doing.fraction or 0.0) if doing is not None else 0.0,
                "now": f"cancelled, recorded when the runs beside it finish ({now})"
                if jobs.cancelling(cache, j)
                else now,
                "run": j.run_id,
            }
        )
    return pd.DataFrame(rows)


def _table(items: list[jobs.Job], finished: bool = False) -> pd.DataFrame:
    """Jobs as rows; finished ones with their holdout accuracy, training time and a link to them."""
    results = loaders.run_table(cache).set_index("run_id") if finished else None
    rows = []
    for j in items:
        row = {
            "state": j.state,
            "slice": j.config.slice,
            "seed": j.config.seed,
            "experiment": f"{j.config.backbone} · {j.config.mode} · aug {j.config.aug}",
            "submitted": datetime.fromtimestamp(j.submitted).strftime("%H:%M:%S"),
            "run": j.run_id,
        }
        if finished:
            known = results is not None and j.run_id in results.index
            row |= {
                "accuracy": results.at[j.run_id, "accuracy"] if known else None,
                "train s": results.at[j.run_id, "train_seconds"] if known else None,
                "open": f"/Run?run={j.run_id}" if known else None,
                "error": j.error or "",
            }
        rows.append(row)
    return pd.DataFrame(rows)


LIVE_PANELS = 2  # runs in training drawn with live curves; the others are rows of one table
FINISHED_COLUMNS = {
    "accuracy": st.column_config.ProgressColumn("holdout accuracy", min_value=0, max_value=1, format="%.3f"),
    "train s": st.column_config.NumberColumn(format="%.1f"),
    "open": st.column_config.LinkColumn("results", display_text="open the run"),
}


@st.fragment(run_every=1.5)
def queue_view() -> None:
    jobs.resume(cache)  # also takes up a job whose worker died mid-run
    everything = jobs.list_jobs(cache)
    queued = [j for j in everything if j.state == "queued"]
    active = [j for j in everything if j.state == "running"]
    finished = [j for j in everything if j.state not in ("queued", "running")]
    st.subheader("Queue")
    try:
        st.caption(f"Runs train {jobs.where()}.")
    except UserError as error:
        st.error(str(error))
    if not everything:
        st.info("Nothing queued yet: choose slices above and press Launch.")
    for job in active[:LIVE_PANELS]:
        _active_panel(job)
    if len(active) > LIVE_PANELS:
        more = active[LIVE_PANELS:]
        st.markdown(f"**Also training: {len(more)} run(s)** (heads on the same features train together)")
        st.dataframe(
            _training_table(more),
            hide_index=True,
            key="training_table",
            column_config={
                "progress": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent")
            },
        )
        if st.button(f"Cancel these {len(more)} runs", key="cancel_training"):
            for job in more:
                jobs.cancel(cache, job.id)
    if queued:
        seconds, unknown = jobs.queue_seconds(queued, loaders.summaries(cache))
        eta = f"; about {seconds / 60:,.1f} min of training" if seconds else ""
        eta += f" plus {unknown} run(s) of a kind not timed yet" if unknown and seconds else ""
        st.markdown(f"**Waiting: {len(queued)} run(s)**{eta}")
        st.dataframe(_table(queued), hide_index=True, key="queued_table")
        if st.button("Cancel all waiting runs", key="cancel_queued"):
            for job in queued:
                jobs.cancel(cache, job.id)
    if finished:
        st.markdown(f"**Finished: {len(finished)}** (complete runs are on the other pages)")
        st.dataframe(
            _table(finished[:50], finished=True),
            hide_index=True,
            key="finished_table",
            column_config=FINISHED_COLUMNS,
        )
        cols = st.columns(2)
        failed = [j.id for j in finished if j.state in ("failed", "cancelled")]
        if failed and cols[0].button(f"Retry {len(failed)} failed or cancelled run(s)", key="retry_failed"):
            jobs.retry(cache, failed)
        if cols[1].button("Clear this list", key="clear_finished"):
            jobs.clear_finished(cache)


queue_view()
