"""Data: which images are there, how they split, and what augmentation does to them."""

from pathlib import Path

import numpy as np
import streamlit as st

from core.augment import POLICIES, augmented_views
from core.datasets import find_datasets, folder_stamp, load_rgb, scan
from core.errors import UserError
from core.images import square
from core.paths import DEFAULT_DATA, PROJECT_ROOT
from core.report import slice_sizes
from core.splits import HOLDOUT_SHARE, SEED_GRID, VAL_SHARE
from pages.common import charts, state

state.header("Data", "What is in the dataset, how it is split, and what augmentation does to an image.")
cache = state.cache_dir()

choices = {str(p.relative_to(PROJECT_ROOT)): str(p) for p in find_datasets(PROJECT_ROOT / "data")}
current = state.dataset()
source = st.radio("Dataset", ["bundled or under data/", "a folder path"], horizontal=True,
                  key="data_source", index=0 if current in choices.values() else 1)
if source == "a folder path":
    typed = st.text_input("Class-folder dataset", value=current, key="data_path",
                          help="A folder of class sub-folders of images")
    chosen = typed.strip()
else:
    names = list(choices)
    default = next((n for n, p in choices.items() if p == current), names[0] if names else None)
    chosen = choices[st.selectbox("Dataset", names, index=names.index(default), key="data_pick")] \
        if names else str(DEFAULT_DATA)


@st.cache_data(show_spinner="Checking images…", max_entries=16)
def _scan(path: str, cache_dir: str, stamp: int):
    dataset = scan(path, Path(cache_dir))
    return dataset.classes, dataset.paths, dataset.labels, dataset.unreadable, dataset.counts()


try:
    classes, paths, labels, unreadable, counts = _scan(chosen, str(cache), folder_stamp(chosen))
except UserError as error:
    st.error(str(error))
    st.stop()
if not paths:
    st.error(f"{chosen} has class folders but no readable images in them")
    st.stop()
state.set_dataset(str(Path(chosen).expanduser().resolve()))
root = Path(state.dataset())

left, right = st.columns([3, 2])
with left:
    st.subheader(f"{sum(counts.values()):,} readable images in {len(classes)} classes")
    st.plotly_chart(charts.class_counts(counts), key="counts")
with right:
    st.subheader("Splits")
    st.caption(f"Every run on this dataset is scored on the same holdout ({HOLDOUT_SHARE:.0%} of "
               f"each class) and validated on the same {VAL_SHARE:.0%}; slices come from the rest. "
               "Sizes for sample seed 0:")
    try:
        st.dataframe(slice_sizes(labels, classes, list(SEED_GRID)), hide_index=True)
    except UserError as error:
        st.error(str(error))
if unreadable:
    with st.expander(f"{len(unreadable)} unreadable file(s), skipped", expanded=True):
        st.dataframe([{"file": p, "reason": r} for p, r in unreadable], hide_index=True)

st.subheader("Samples")
per_class = st.slider("Images per class", 2, 12, 6, key="data_samples")
rng = np.random.default_rng(0)
for label, name in enumerate(classes):
    members = np.flatnonzero(labels == label)
    picks = rng.choice(members, size=min(per_class, len(members)), replace=False)
    st.image([square(load_rgb(root / paths[i]), 96) for i in picks], caption=[name] * len(picks))

st.subheader("Augmentation preview")
cols = st.columns(3)
policy = cols[0].selectbox("Policy", POLICIES, index=POLICIES.index("heavy"), key="aug_policy")
views = cols[1].slider("Views", 2, 12, 8, key="aug_views")
index = cols[2].number_input("Image number", 0, len(paths) - 1, 0, key="aug_index")
partner = (index + len(paths) // 2) % len(paths)
pair = np.stack([square(load_rgb(root / paths[i]), 128) for i in (index, partner)])
try:
    st.image([pair[0], *augmented_views(pair, policy, views, seed=0)],
             caption=["original"] + [f"{policy} {i + 1}" for i in range(views)])
except UserError as error:
    st.error(str(error))
