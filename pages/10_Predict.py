"""Predict: what does a trained run say about new images, and where does it look?"""

import streamlit as st
from PIL import Image

from core.answers.cam import READING_GUIDE, explain
from core.data.datasets import IMAGE_EXTENSIONS, unreadable_reason
from core.store.tables import picker_labels
from pages.common import layout, state

layout.header(
    "Predict", "What does a trained run say about images it has never seen, and where does it look?"
)
cache = state.cache_dir()
table, _ = layout.dataset_runs(cache)
labels = picker_labels(table, state.technical())  # newest first
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="predict_run")
uploaded = st.file_uploader(
    "Images to predict (a few)",
    type=sorted(e.strip(".") for e in IMAGE_EXTENSIONS),
    accept_multiple_files=True,
    key="predict_files",
)
if not uploaded:
    st.info("Drop a few images: the run predicts them, with its top classes and where it looked.")
    st.stop()
opened, unreadable = [], []
for file in uploaded:
    try:
        with Image.open(file) as image:
            image.load()
            opened.append((file.name, image.copy()))
    except Exception as error:  # PIL raises many types for a bad file; each is named below
        unreadable.append(f"{file.name}: {unreadable_reason(error)}")
for line in unreadable:
    st.warning(f"Skipped {line}")
if not opened:
    st.stop()
with st.spinner("Predicting and drawing where it looked…"):
    answers = explain(cache, run_id, [image for _, image in opened])
for (name, _), answer in zip(opened, answers, strict=True):
    st.markdown(f"**{name}**: " + ", ".join(f"{c} {p:.0%}" for c, p in answer.top))
    left, right = st.columns(2)
    left.image(answer.pixels, caption="as the model sees it", width=224)
    right.image(answer.overlay, caption=f"where it looked for '{answer.top[0][0]}'", width=224)
st.caption(READING_GUIDE)
