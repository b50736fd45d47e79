"""The Next batch page's round-plan table, its "Which images" section and the labels coming
back, kept here so that the page reads as its questions."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from core.answers.curves import RELIABLE_MULTIPLE
from core.answers.nextbatch.batch import NextBatch, Request, request_key
from core.answers.nextbatch.labels_io import import_uploaded_labels
from core.answers.nextbatch.simulate import Simulation
from core.answers.nextbatch.strategies import STRATEGY_WORDS, strategy_named
from core.answers.rounds import RoundPlan
from core.base.errors import UserError
from core.base.words import counted
from core.serving import rankings
from core.store.config import RunConfig
from pages.common import signin, state

GRID = 5  # thumbnails per row


def plan_rows(plan: RoundPlan) -> list[dict]:
    """One row per round in words and percent: what it costs, where it leaves the accuracy."""
    return [
        {
            "per class, in all": r.cumulative_per_class,
            "this round, all classes": added,
            "predicted accuracy": f"{r.accuracy.estimate:.1%}",
            "interval": f"{r.accuracy.low:.1%} to {r.accuracy.high:.1%}",
            "chance of the target": f"{r.p_reached:.0%}",
            "curve trusted": "yes" if r.reliable else f"no: past {RELIABLE_MULTIPLE:g}x the data",
        }
        for r, added in zip(plan.rounds, plan.added(), strict=True)
    ]


def _span(low: float, high: float) -> str:
    """An interval in percent: one seed has none, and a share that some seed never reached is
    open above."""
    if math.isnan(low):
        return "none with one seed"
    return f"{low:.0%} to " + ("open" if math.isnan(high) else f"{high:.0%}")


def backtest_rows(simulation: Simulation) -> list[dict]:
    """Per strategy in percent: the holdout accuracy after the last round, and the share of
    random's labels it took to reach random's final accuracy, each with its interval over seeds."""
    rows = []
    for curve in simulation.curves:
        last, share = curve.rounds()[-1], simulation.labels_to_match_random(curve)
        rows.append(
            {
                "strategy": curve.strategy,
                "accuracy after the last round": f"{last.accuracy:.1%}",
                "its interval": _span(last.low, last.high),
                "labels to match random, share of random's": "never"
                if share is None
                else f"{share.estimate:.0%}",
                "that share's interval": "" if share is None else _span(share.low, share.high),
            }
        )
    return rows


def which_images(cache: Path, data: str, config: RunConfig, strategies: list[str]) -> None:
    """Pool, strategy and size in; the pool ranked in a process of its own (progress, time left,
    Cancel); the batch as thumbnails with the suggested class and the reason, the images left
    out and why, and the two files for the labelling tool out."""
    st.subheader("Which images")
    st.session_state.setdefault("nb_pool", state.pool(data))  # the pool chosen on the Data page
    pool = signin.path_input(st, "Folder of unlabelled images (any layout)", "nb_pool")
    left, right = st.columns(2)
    strategy = left.selectbox(
        "Strategy",
        strategies,
        format_func=strategy_named,
        key="nb_strategy",
        help=f"{strategies[0]} is the default",
    )
    size = right.number_input("Images in the batch", 1, 100_000, 20, key="nb_size")
    if not pool:
        st.caption(
            "Type the path of a folder of images nobody has labelled yet, or choose or upload one on "
            "the Data page, to choose a batch from it."
        )
        return
    request = Request(
        Path(data),
        Path(pool),
        int(size),
        strategy,
        split=config.split,
        backbone=config.backbone,
        image_size=config.image_size,
    )
    key = request_key(request)
    if st.button("Choose the batch", key="nb_choose", **signin.locked()):
        rankings.start(cache, request)
    found = rankings.status(cache, key)
    if found.running:
        _follow(cache, key)
    elif found.cancelled:
        st.warning("Stopped: the pool's ranking was cancelled, and no batch was written.")
    elif found.error:
        st.error(found.error)
    elif batch := rankings.load(found):
        _show(batch)


@st.fragment(run_every=1.0)
def _follow(cache: Path, key: str) -> None:
    """The ranking's stage, its progress and time left, and Cancel, redrawn every second; the
    page redraws once it ends."""
    now = rankings.status(cache, key)
    if not now.running:
        st.rerun()
    stage = now.stage
    text = "starting" if stage is None else stage.describe() if stage.done else f"{stage.name}…"
    st.progress(now.fraction, text=f"Ranking the pool: {text}")
    stop = {"on_click": rankings.cancel, "args": (cache, key)}
    st.button("Cancel", key="nb_choose_cancel", **signin.locked(), **stop)


def _show(found: NextBatch) -> None:
    csv, tasks = (Path(file).read_bytes() for file in found.files[:2])
    head = (
        "no model to guess their classes yet"
        if found.head_run is None
        else "beside each image, the class the current model guesses and how sure it is"
    )
    st.markdown(f"**{len(found.items)} images to label next**, {STRATEGY_WORDS[found.strategy]} ({head}).")
    for row in range(0, len(found.items), GRID):
        for column, item in zip(st.columns(GRID), found.items[row : row + GRID], strict=False):
            guess = "" if item.suggested is None else f": {item.suggested}? ({item.p_suggested:.0%})"
            column.image(item.path, caption=f"{item.rank}{guess}", width=140)
            column.caption(item.reason)
    if found.excluded:
        st.markdown(f"**{len(found.excluded)} pool images left out**")
        st.dataframe(pd.DataFrame([e.to_dict() for e in found.excluded]), hide_index=True, key="nb_excluded")
    left, right = st.columns(2)
    left.download_button("The batch as CSV", csv, "batch.csv", "text/csv", key="nb_csv")
    right.download_button("Label Studio import file", tasks, "tasks.json", "application/json", key="nb_tasks")


def labels_back(cache: Path, data: str) -> None:
    """The labelled batch back from the labelling tool: a new version of the dataset (the old one
    and its runs untouched), and a button to work on it."""
    st.subheader("Labels back from the labelling tool")
    st.caption(
        "The batch CSV with a label column filled in (path,label), or Label Studio's JSON export: "
        "its images are added to a new version of this dataset under data/uploads/, so the runs "
        "on this one stay comparable. Paths may be relative to the pool's folder."
    )
    uploaded = st.session_state.setdefault("nb_labels_uploads", 0)  # a new key empties the uploader
    left, right = st.columns([3, 2])
    upload = left.file_uploader(
        "Labels file", type=["csv", "json"], key=f"nb_labels_{uploaded}", **signin.locked()
    )
    name = right.text_input("New version's name", key="nb_labels_name", placeholder="empty: name-v2, -v3…")
    if st.button("Import the labels", key="nb_labels_go", disabled=upload is None or not signin.can_write()):
        pool = st.session_state.get("nb_pool") or state.pool(data)  # the folder the batch came from
        base, wanted = Path(pool) if pool else None, name.strip() or None
        try:
            done = import_uploaded_labels(data, upload.name, upload.getvalue(), cache, base, wanted)
        except UserError as error:
            st.error(str(error))
            return
        st.session_state["nb_labels_uploads"] = uploaded + 1
        st.session_state["nb_labels_done"] = done
        st.rerun()
    done = st.session_state.get("nb_labels_done")
    if done and data in (str(done.parent), str(done.dataset)):  # not on a third dataset
        added = ", ".join(f"{kind} {count}" for kind, count in done.added.items())
        st.success(
            f"{done.dataset.name}: {counted(sum(done.added.values()), 'newly labelled image')} added "
            f"({added}), {sum(done.counts.values()):,} images in all, in {done.dataset}."
        )
        if st.button(f"Work on {done.dataset.name}", key="nb_labels_use", disabled=data == str(done.dataset)):
            state.set_dataset(str(done.dataset))
            st.rerun()
