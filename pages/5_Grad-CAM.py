"""Grad-CAM: where the model looked, on the holdout images it got wrong."""

import streamlit as st

from core.answers import budget, testsets
from core.answers.cam import (
    GALLERIES,
    METHODS,
    POSITIVE_ONLY,
    READING_GUIDE,
    TITLES,
    across_slices,
    animation,
    colour_scale,
    first_runs,
    gallery,
    map_correlation,
    overlay_path,
    pair_requests,
    pairs_of,
    showcase_run,
    source_images,
)
from core.base.errors import UserError
from core.store import runs
from core.store.tables import picker_labels
from pages.common import cams, layout, loaders, state

layout.header(
    "Grad-CAM",
    "Is the model right for the right reason? Where it looked for the class it "
    "predicted, beside where it would look for the true class.",
)
cache = state.cache_dir()
table, _ = layout.dataset_runs(cache)

labels = picker_labels(table, state.technical())  # newest first
view = st.radio(
    "View",
    ["mistakes of one run", "one image as labels grow", "your own images"],
    horizontal=True,
    key="cam_view",
)
if view == "one image as labels grow":
    run_id = st.selectbox("Runs like", list(labels), format_func=labels.get, key="cam_grow_run")
    grown = runs.load(cache, run_id)
    experiment = budget.siblings(cache, grown.summary)
    predictions = grown.predictions().frame().sort_values("p_true")
    choices = {int(r.image_index): f"{r.path} ({r.true})" for r in predictions.itertuples()}
    image = st.selectbox(
        "Holdout image (hardest for this run first)",
        list(choices),
        format_func=choices.get,
        key="cam_grow_image",
    )
    firsts = first_runs(experiment)
    label = int(predictions.set_index("image_index").at[image, "label"])
    cams.drawn(cache, [(s.run_id, image, label) for s in firsts], "gradcam")
    frames = across_slices(cache, firsts, image)
    columns = st.columns(min(6, len(frames)))
    for i, frame in enumerate(frames):
        verdict = ":green[right]" if frame.right else f":red[says {frame.predicted}]"
        columns[i % len(columns)].image(
            str(frame.overlay), width=150, caption=f"{frame.slice}: {frame.p_true:.0%} for '{frame.true}'"
        )
        columns[i % len(columns)].markdown(verdict)
    st.image(
        animation(frames),
        caption=f"The same as an animation: Grad-CAM for the true class '{frames[0].true}'",
        width=280,
    )
    st.caption(f"{READING_GUIDE} One run per slice (the first seeds).")
    st.image(colour_scale(), caption="no evidence → strong evidence", width=320)
    st.stop()

cols = st.columns([4, 2, 2, 1])
try:  # by default the run the report shows: the best of the dataset's main experiment
    shown = showcase_run(
        loaders.selection(str(cache), state.dataset(), None, runs.complete_ids(cache)).summaries
    )
except UserError:  # its folder is gone: the newest run
    shown = None
first = list(labels).index(shown.run_id) if shown and shown.run_id in labels else 0
run_id = cols[0].selectbox("Run", list(labels), index=first, format_func=labels.get, key="cam_run")
method = cols[1].selectbox(
    "Method",
    list(METHODS),
    format_func=TITLES.get,
    key="cam_method",
    help="ScoreCAM runs the model once per few features of each image: minutes on a CPU, it says how long "
    "before it starts",
)
which = cols[2].selectbox("Images", GALLERIES, key="cam_which")
per_page = cols[3].number_input("Per page", 1, 24, 6, key="cam_per_page")

sets = {"": "the holdout"} | {t.fingerprint: f"test set {t.name}" for t in testsets.scored(cache, run_id)}
source = st.radio(
    "Images from",
    list(sets),
    format_func=sets.get,
    horizontal=True,
    key=state.key("cam_source", run_id),
    help="Score a run on another folder on the Run page to browse its mistakes here",
)
try:
    run = runs.load(cache, run_id)
    chosen = next((t for t in testsets.scored(cache, run_id) if t.fingerprint == source), None)
    rows = gallery(cache, run_id, which, testsets.predictions(cache, chosen) if chosen else None)
    pixels = source_images(run, source)
except UserError as error:
    st.error(str(error))
    st.stop()
if rows.empty:
    st.success(f"No {which} images of {sets[source]} in this run.")
    st.stop()
pages = (len(rows) - 1) // per_page + 1
page = st.number_input(
    f"Page (of {pages}; {len(rows)} images, least convincing first)", 1, pages, 1, key="cam_page"
)
shown = rows.iloc[(page - 1) * per_page : page * per_page]
requests = pair_requests(run.summary.classes, shown)
cams.drawn(cache, [(run_id, index, label) for index, label in requests], method, source)
pairs = pairs_of([overlay_path(cache, run_id, method, index, label, source) for index, label in requests])
guide, scale = st.columns([3, 1])
guide.caption(READING_GUIDE)
scale.image(colour_scale(), caption="no evidence → strong evidence")
alike = map_correlation(pairs)
if alike is not None and method in POSITIVE_ONLY and alike >= 0.7:
    st.info(
        f"{TITLES[method]} counts only evidence for a class, never against it, so on this model its maps "
        f"for the predicted and the true class come out nearly the same: they correlate {alike:.2f} (1 is "
        "the same map; median over the mistakes on this page). The pair cannot show what told the classes "
        "apart: choose Grad-CAM for that."
    )
elif alike is not None:
    st.caption(
        f"How alike the two maps of a mistake are on this page: correlation {alike:.2f} (median; 1 is the "
        "same map, 0 unrelated)."
    )

for r, (predicted_map, true_map) in zip(shown.itertuples(), pairs, strict=True):
    verdict = ":green[right]" if r.pred == r.true else ":red[wrong]"
    st.markdown(
        f"{verdict}: a **{r.true}** predicted as **{r.pred}**; the model gave {r.p_true:.0%} to "
        f"{r.true} and {r.p_max:.0%} to {r.pred} · `{r.path}`"
    )
    left, middle, right = st.columns(3)
    left.image(pixels[int(r.image_index)], caption=sets[source].removeprefix("the "), width=224)
    middle.image(str(predicted_map), caption=f"{TITLES[method]} for predicted '{r.pred}'", width=224)
    right.image(str(true_map), caption=f"{TITLES[method]} for true '{r.true}'", width=224)
