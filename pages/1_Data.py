"""Data: which images are there, how they split, and what augmentation does to them."""

import numpy as np
import pandas as pd
import streamlit as st

from core.base.errors import UserError
from core.base.paths import DEFAULT_DATA, PROJECT_ROOT
from core.base.words import counted
from core.data.augment import POLICIES, augmented_views
from core.data.splits import ORIGINAL_SLICES, slice_sizes
from core.data.upload import local_datasets
from core.present import figures
from core.store.config import Split
from pages.common import layout, loaders, pool, signin, state, uploads

AUG_PER_ROW = 6

layout.header("Data", "What is in the dataset, how it is split, and what augmentation does to an image.")
cache = state.cache_dir()

found = local_datasets()
choices = {
    str(p.relative_to(PROJECT_ROOT)) if p.is_relative_to(PROJECT_ROOT) else str(p): str(p) for p in found
}
current = state.dataset()
if st.session_state.pop("data_show_imported", False):  # set before the radio exists, as Streamlit requires
    st.session_state["data_source"] = "bundled, under data/ or uploaded"
    uploads.imported_summary()
source = st.radio(
    "Dataset",
    ["bundled, under data/ or uploaded", "a folder path", "upload your own"],
    horizontal=True,
    key="data_source",
    index=0 if current in choices.values() else 1,
)
if source == "upload your own":
    if imported := uploads.block():
        state.set_dataset(imported)
        st.session_state["data_show_imported"] = True
        st.rerun()
    uploads.deletion()
    st.stop()
if source == "a folder path":
    typed = st.text_input(
        "Class-folder dataset",
        value=current,
        key=state.key("data_path", current),
        **signin.locked("A folder of class sub-folders of images"),
    )
    chosen = typed.strip() if typed.strip() == current else signin.typed_path(typed.strip()) or current
else:
    names = list(choices)
    default = next((n for n, p in choices.items() if p == current), names[0] if names else None)
    chosen = (
        choices[
            st.selectbox("Dataset", names, index=names.index(default), key=state.key("data_pick", current))
        ]
        if names
        else str(DEFAULT_DATA)
    )

try:
    dataset = loaders.dataset(chosen, cache)
except UserError as error:
    st.error(str(error))
    st.stop()
if not dataset.paths:
    st.error(f"{chosen} has class folders but no readable images in them")
    st.stop()
state.set_dataset(str(dataset.root))
counts = dataset.counts()

left, right = st.columns([3, 2])
with left:
    st.subheader(f"{len(dataset):,} readable images in {len(dataset.classes)} classes")
    st.plotly_chart(figures.class_counts(counts), key="counts")
with right:
    st.subheader("Splits")
    chosen_split = state.split()
    cols = st.columns(3)
    holdout = cols[0].number_input(
        "Holdout share",
        0.02,
        0.6,
        chosen_split.holdout,
        0.01,
        key="data_holdout",
        help="Of each class; larger gives tighter intervals on every number",
    )
    val = cols[1].number_input("Validation share", 0.02, 0.6, chosen_split.val, 0.01, key="data_val")
    split_seed = cols[2].number_input("Split seed", 0, 10_000, chosen_split.seed, key="data_split_seed")
    try:
        sizes = slice_sizes(dataset.labels, dataset.classes, ORIGINAL_SLICES, holdout, val, int(split_seed))
    except UserError as error:
        st.error(str(error))
    else:
        state.set_split(Split(holdout, val, int(split_seed)))
        st.caption(
            f"Every run on this dataset is scored on the same holdout ({holdout:.0%} of each class) and "
            f"validated on the same {val:.0%}; slices come from the rest. New runs use this split; runs "
            "on another split are shown as another holdout. Their sizes:"
        )
        noted = any(size.note for size in sizes)  # the column only where a slice cannot be drawn
        st.table(
            pd.DataFrame(
                [(s.name, s.per_class, s.images, *([s.note] if noted else [])) for s in sizes],
                columns=["set", "images per class", "images in all", *(["note"] if noted else [])],
            ),
            hide_index=True,
        )
if dataset.unreadable:
    with st.expander(f"{counted(len(dataset.unreadable), 'unreadable file')}, skipped", expanded=True):
        st.dataframe([{"file": p, "reason": r} for p, r in dataset.unreadable], hide_index=True)

pool.block(str(dataset.root))

st.subheader("Samples")
per_class = st.slider("Images per class", 2, 12, 6, key="data_samples")
st.caption("One row per class; hover an image and press its fullscreen button to see it large.")
rng = np.random.default_rng(0)
for label, name in enumerate(dataset.classes):
    members = np.flatnonzero(dataset.labels == label)
    picks = rng.choice(members, size=min(per_class, len(members)), replace=False)
    # decoded at 320 px and drawn in a row of per_class columns: fullscreen shows the detail
    images = loaders.thumbnails(str(dataset.root), tuple(dataset.paths[i] for i in picks), 320)
    st.markdown(f"**{name}** ({counts[name]:,} images)")
    for column, image in zip(st.columns(per_class), images, strict=False):
        column.image(image, width="stretch")

st.subheader("Augmentation preview")
cols = st.columns(3)
policy = cols[0].selectbox("Policy", POLICIES, index=POLICIES.index("heavy"), key="aug_policy")
views = cols[1].slider("Views", 2, 17, 11, key="aug_views")
index = cols[2].number_input("Image number", 0, len(dataset) - 1, 0, key="aug_index")
partner = (index + len(dataset) // 2) % len(dataset)
pair = np.stack(loaders.thumbnails(str(dataset.root), (dataset.paths[index], dataset.paths[partner]), 128))
try:
    tiles = [pair[0], *augmented_views(pair, policy, views, seed=0)]
except UserError as error:
    st.error(str(error))
else:
    captions = ["original"] + [f"{policy} {i + 1}" for i in range(views)]
    for start in range(0, len(tiles), AUG_PER_ROW):  # rows of six, aligned: the default fills two
        row = st.columns(AUG_PER_ROW)
        for column, tile, caption in zip(row, tiles[start:], captions[start:], strict=False):
            column.image(tile, caption=caption, width="stretch")
