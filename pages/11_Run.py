"""Run: one trained run in detail: per class, confusions, a second test set, a verified model to
take away, and deletion."""

import pandas as pd
import streamlit as st

from core.answers import testsets
from core.base.errors import UserError
from core.base.words import counted
from core.data.upload import local_datasets
from core.engine.export import FORMATS, SUFFIXES, card_path, export, read_card
from core.present import figures
from core.store import run_queries as rq
from core.store import runs
from core.store.tables import TABLE_FORMATS, picker_labels, results_frame, table_bytes
from pages.common import layout, loaders, signin, state

layout.header(
    "Run", "How does one run do per class, on a harder test set of my own, and how do I take it away?"
)
cache, WRITES = state.cache_dir(), signin.locked()
asked = st.query_params.get("run")  # a link from the Train page's finished runs
if folder := rq.folder_of(loaders.run_table(cache), asked):
    state.set_dataset(folder)
table, _ = layout.dataset_runs(cache)
labels = picker_labels(table, state.technical())  # newest first
run_id = st.selectbox(
    "Run",
    list(labels),
    format_func=labels.get,
    key=state.key("run_pick", state.dataset()),
    index=list(labels).index(asked) if asked in labels else 0,
)
detail = loaders.summary(str(cache), run_id)
left, right = st.columns([2, 3])
accuracies = detail.holdout.class_accuracies()
left.dataframe(
    pd.DataFrame(
        {
            "class": list(accuracies),
            "accuracy": [100 * e.estimate for e in accuracies.values()],
            "95% interval": [f"{e.low:.0%} to {e.high:.0%}" for e in accuracies.values()],
        }
    ),
    hide_index=True,
    column_config={"accuracy": st.column_config.ProgressColumn(min_value=0, max_value=100, format="%.0f%%")},
)
left.caption(
    "Each class's share of its holdout images the run got right; the interval is what so few images allow."
)
right.plotly_chart(figures.confusion(detail.holdout.confusion, detail.classes), key="run_confusion")

st.subheader("On a second, harder test set")
found = local_datasets()
cols = st.columns([5, 2, 3])  # room for "Score its experiment (72 runs)" at 1280 px
OTHER = "another folder…"
picked = cols[0].selectbox(
    "A labelled folder (class folders matched by name)",
    [*map(str, found), OTHER],
    key="run_testset",
    help="A dataset under data/, one uploaded on the Data page, or any path",
)
folder = signin.path_input(cols[0], "Folder path", "run_testset_path") if picked == OTHER else picked
experiment_runs = rq.same_experiment(table, run_id)
for col, label, chosen, scope in (
    (cols[1], "Score this run", [run_id], "run"),
    (cols[2], f"Score its experiment ({len(experiment_runs)} runs)", experiment_runs, "experiment"),
):
    if col.button(label, key=state.key("run_score", scope), disabled=not folder or not signin.can_write()):
        bar = st.progress(0.0, text="Scoring…")
        try:
            for i, rid in enumerate(chosen):
                testsets.score(cache, rid, folder)
                bar.progress(
                    (i + 1) / len(chosen), text=f"Scored {i + 1} of {counted(len(chosen), 'run')} on {folder}"
                )
        except UserError as error:
            st.error(str(error))
        bar.empty()
mine = [s for s in loaders.summaries(cache) if s.config.data == state.dataset()]
pairs = testsets.scored_runs(cache, mine)
scored = testsets.scored_frame(pairs, state.technical())
if not scored.empty:
    st.dataframe(scored, hide_index=True)
    if unscored := testsets.unscored_classes(pairs):
        st.warning(unscored)
    st.caption(
        "Percentages with their 95% intervals in brackets; its mistakes are on the Grad-CAM page "
        "(Images from: test set)."
    )

st.subheader("Take it away: a verified model, and every run's numbers")
fmt = st.radio("Model format", FORMATS, horizontal=True, key="run_export_format")
target = cache / "exports" / run_id / f"model{SUFFIXES[fmt]}"
if st.button(f"Export this run as {fmt} and verify it", key="run_export", **WRITES):
    with st.spinner("Exporting, then checking the export against the run's predictions…"):
        try:
            export(cache, run_id, fmt, target)
        except UserError as error:
            st.error(str(error))
try:
    card = read_card(target)
except UserError as error:
    card = None
    st.error(str(error))
if card is not None:
    st.success(f"{target.name}: {card.verified.sentence()}.")
    cols = st.columns(2)
    cols[0].download_button(
        f"Download {target.name}",
        target.read_bytes(),
        file_name=target.name,
        key="run_export_model",
        on_click="ignore",
    )
    cols[1].download_button(
        f"Download its card ({card_path(target).name})",
        card_path(target).read_bytes(),
        file_name=card_path(target).name,
        mime="application/json",
        key="run_export_card",
        on_click="ignore",
    )
cols = st.columns(2)
results = results_frame(loaders.summaries(cache))
for col, table_format in zip(cols, TABLE_FORMATS, strict=True):
    col.download_button(
        f"Every run as {table_format.upper()} ({len(results)} runs)",
        table_bytes(results, table_format),
        file_name=f"runs.{table_format}",
        key=state.key("run_runs", table_format),
        on_click="ignore",
    )

with st.expander("Delete runs"):
    st.caption(
        "Deleting frees the disk and takes runs off every page; the dataset's cached images and features "
        "stay for other runs. It cannot be undone."
    )
    cols = st.columns(2)
    if cols[0].button("Delete this run", key="run_delete_run", **WRITES):
        runs.delete(cache, run_id)
        st.rerun()
    if cols[1].button(
        f"Delete its experiment's {len(experiment_runs)} runs", key="run_delete_experiment", **WRITES
    ):
        for rid in experiment_runs:
            runs.delete(cache, rid)
        st.rerun()
