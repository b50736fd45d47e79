"""The Train page's queue: runs training (live curves), waiting (with the time they will take)
and finished (with their results), redrawn on its own every 1.5 s."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from core.base.errors import UserError
from core.base.progress import Stage
from core.base.words import counted
from core.present import figures
from core.serving import jobs
from core.store import runs
from core.store.record import read_metrics
from pages.common import loaders, signin, state


def _active_panel(cache: Path, job: jobs.Job) -> None:
    folder = runs.partial_dir(cache, job.run_id)
    c = job.config
    named = f" `{job.run_id}`" if state.technical() else ""
    what = f"{c.backbone} · {c.mode} · aug {c.aug} · slice {c.slice} · seed {c.seed}"
    st.markdown(f"**Training**{named}: {what}")
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
    elif st.button("Cancel this run", key=state.key("cancel", job.id), **signin.locked()):
        jobs.cancel(cache, job.id)
        st.toast("Cancelling…")


def _technical_id(job: jobs.Job) -> dict[str, str]:
    """The run id as a column only when technical names are asked for: a room reads the run's
    slice and seed, and the finished table links each run."""
    return {"run": job.run_id} if state.technical() else {}


def _training_table(cache: Path, items: list[jobs.Job]) -> pd.DataFrame:
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
            }
            | _technical_id(j)
        )
    return pd.DataFrame(rows)


def _table(cache: Path, items: list[jobs.Job], finished: bool = False) -> pd.DataFrame:
    """Jobs as rows; finished ones with their holdout accuracy, training time and a link to them."""
    results = {s.run_id: s for s in loaders.summaries(cache)} if finished else {}
    rows = []
    for j in items:
        row = {
            "state": j.state,
            "slice": j.config.slice,
            "seed": j.config.seed,
            "experiment": f"{j.config.backbone} · {j.config.mode} · aug {j.config.aug}",
            "submitted": datetime.fromtimestamp(j.submitted).strftime("%H:%M:%S"),
        } | _technical_id(j)
        if finished:
            summary = results.get(j.run_id)
            row |= {
                "accuracy": summary.accuracy if summary else None,
                "train s": summary.train_seconds if summary else None,
                "open": f"/Run?run={j.run_id}" if summary else None,
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


def _also_training(cache: Path, more: list[jobs.Job]) -> None:
    st.markdown(f"**Also training: {counted(len(more), 'run')}** (heads on the same features train together)")
    st.dataframe(
        _training_table(cache, more),
        hide_index=True,
        key="training_table",
        column_config={
            "progress": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent")
        },
    )
    if st.button(f"Cancel these {len(more)} runs", key="cancel_training", **signin.locked()):
        for job in more:
            jobs.cancel(cache, job.id)


def _waiting(cache: Path, queued: list[jobs.Job]) -> None:
    seconds, unknown = jobs.queue_seconds(queued, loaders.summaries(cache))
    eta = f"; about {seconds / 60:,.1f} min of training" if seconds else ""
    eta += f" plus {counted(unknown, 'run')} of a kind not timed yet" if unknown and seconds else ""
    st.markdown(f"**Waiting: {counted(len(queued), 'run')}**{eta}")
    st.dataframe(_table(cache, queued), hide_index=True, key="queued_table")
    if st.button("Cancel all waiting runs", key="cancel_queued", **signin.locked()):
        for job in queued:
            jobs.cancel(cache, job.id)


def _finished(cache: Path, finished: list[jobs.Job]) -> None:
    st.markdown(f"**Finished: {len(finished)}** (complete runs are on the other pages)")
    st.dataframe(
        _table(cache, finished[:50], finished=True),
        hide_index=True,
        key="finished_table",
        column_config=FINISHED_COLUMNS,
    )
    cols = st.columns(2)
    failed = [j.id for j in finished if j.state in ("failed", "cancelled")]
    if failed and cols[0].button(
        f"Retry {counted(len(failed), 'failed or cancelled run')}", key="retry_failed", **signin.locked()
    ):
        jobs.retry(cache, failed)
    if cols[1].button("Clear this list", key="clear_finished", **signin.locked()):
        jobs.clear_finished(cache)


@st.fragment(run_every=1.5)
def view(cache: Path) -> None:
    """The queue, redrawn every 1.5 s on its own: runs training (live curves for the first
    two), waiting with the time they will take, and finished with their results."""
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
        st.info(
            "Nothing queued yet: choose slices above and press Launch."
            if signin.can_write()
            else "Nothing queued yet."
        )
    for job in active[:LIVE_PANELS]:
        _active_panel(cache, job)
    if len(active) > LIVE_PANELS:
        _also_training(cache, active[LIVE_PANELS:])
    if queued:
        _waiting(cache, queued)
    if finished:
        _finished(cache, finished)
