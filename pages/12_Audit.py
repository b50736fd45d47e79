"""Audit: is the holdout itself right? Labels that look wrong, training images that leak into it,
and the classes the runs confuse most."""

import pandas as pd
import streamlit as st

from core.answers import audit
from core.base.errors import UserError
from core.base.progress import Stage, reporting
from core.base.words import counted
from core.store import run_queries as rq
from core.store.tables import backbone_words, percent
from pages.common import layout, loaders, signin, state

QUESTION = "Can the holdout be trusted: are its labels right, does it repeat training images, and which"
layout.header("Audit", f"{QUESTION} classes do the runs mix up?")
cache = state.cache_dir()
split = tuple(state.split())
try:
    dataset = loaders.dataset(state.dataset(), cache)
except UserError as error:
    st.error(str(error))
    st.stop()

found = audit.cached(cache, dataset.fingerprint, split)
if found is None:
    st.info(
        f"The holdout of {dataset.root.name} has not been audited yet. The audit reads every image's "
        "features (seconds when runs have cached them, minutes for a new dataset), cross-validates "
        "a classifier on them and compares every holdout and validation image with the training pool."
    )
    if not st.button("Audit the holdout", type="primary", key="audit_start"):
        st.stop()
    bar = st.progress(0.0, text="Starting…")

    def show(*where) -> None:
        stage = Stage(*where)
        bar.progress(stage.fraction or 0.0, text=stage.describe())

    try:
        with reporting(show):
            audit.audit(dataset.root, cache, split=split)
    except UserError as error:
        st.error(str(error))
        st.stop()
    st.rerun()  # drawn again from the cached audit: the "not audited yet" box and its button go

mine = rq.of_fingerprint(loaders.run_table(cache), dataset.fingerprint)
experiments, names = rq.experiments(mine), loaders.experiment_names(cache, mine)
name, backbone = dataset.root.name, backbone_words(found.backbone)
st.caption(f"{name}, {found.holdout_size:,} holdout images, audited on {backbone} features.")

st.subheader("Labels to check")
share = found.label_share()
st.metric("Holdout labels flagged", f"{len(found.label_issues)} of {found.holdout_size:,}")
st.caption(f"{share.estimate:.0%} of the holdout (95% interval {share.low:.0%} to {share.high:.0%}).")
st.markdown(found.flags_in_words())
excluded = set(audit.excluded(cache, found.fingerprint, split))
if found.label_issues:
    flagged = len(found.label_issues)
    count = st.slider("Show", 1, flagged, min(18, flagged), key="audit_show") if flagged > 1 else 1
    shown = found.label_issues[:count]
    pictures = loaders.thumbnails(str(dataset.root), tuple(i.path for i in shown), 128)
    chosen = set()
    for start in range(0, len(shown), 6):
        row = zip(st.columns(6), shown[start : start + 6], pictures[start : start + 6], strict=False)
        for column, issue, picture in row:
            column.image(picture, width="stretch")
            column.caption(
                f"labelled **{issue.given_label}**, looks like **{issue.suggested_label}** "
                f"(its own label got {1 - issue.score:.0%}) · {issue.path}"
            )
            if column.checkbox(
                "leave out", value=issue.path in excluded, key=state.key("audit_out", issue.path)
            ):
                chosen.add(issue.path)
    st.caption("Flagged when a classifier that never saw the image predicts another class; worst first.")
    left, right = st.columns(2)
    keep = excluded - {i.path for i in shown}  # choices among images not shown stay as they were
    checked = len(chosen | keep)
    label = f"Score without the {counted(checked, 'checked image') if checked else 'checked images'}"
    if left.button(label, key="audit_exclude", disabled=not checked or not signin.can_write()):
        audit.set_excluded(cache, found.fingerprint, split, chosen | keep)
        st.rerun()
    if excluded and right.button("Score on the whole holdout again", key="audit_restore", **signin.locked()):
        audit.set_excluded(cache, found.fingerprint, split, ())
        st.rerun()
    if excluded:
        variant = audit.variant_label(name, len(excluded))
        st.success(
            f"The Holdout page offers **{variant}** beside the original {name}: every run rescored on the "
            f"holdout without {'that image' if len(excluded) == 1 else f'those {len(excluded)} images'}, "
            "never mixed with the original numbers."
        )
        layout.page_link("pages/4_Holdout.py")

st.subheader("Training images in the holdout")
if found.near_duplicates:
    st.error(
        f"{counted(len(found.near_duplicates), 'holdout or validation image')} "
        f"{'is a near-copy' if len(found.near_duplicates) == 1 else 'are near-copies'} of training images: "
        "the holdout partly measures memory, and every accuracy on it is too high. Remove one image of "
        "each pair from the folder."
    )
    pairs = found.near_duplicates[:24]
    pictures = loaders.thumbnails(
        str(dataset.root), tuple(p for d in pairs for p in (d.train_path, d.other_path)), 128
    )
    for start in range(0, len(pairs), 3):
        for column, k in zip(st.columns(3), range(start, min(start + 3, len(pairs))), strict=False):
            pair = pairs[k]
            column.image(pictures[2 * k : 2 * k + 2], width=120)
            column.caption(
                f"training {pair.train_path} · {pair.other_set} {pair.other_path} · "
                f"{pair.similarity:.0%} alike to the model, "
                f"{pair.hash_distance} of {audit.HASH_BITS} pattern bits differ"
            )
else:
    st.success("No holdout or validation image is a near-copy of a training image (resized ones included).")
st.caption(
    "A pair is reported when the frozen features point the same way (cosine at least "
    f"{audit.MIN_SIMILARITY}) and their perceptual hashes differ in at most {audit.MAX_HASH_DISTANCE} of "
    f"{audit.HASH_BITS} bits: resized and re-encoded copies are found, crops are not."
)

st.subheader("Classes the runs confuse")
if not experiments:
    st.info("No runs on this dataset yet: confused classes come from the runs' holdout predictions.")
    layout.page_link("pages/2_Train.py", describe=True)
    st.stop()
experiment = st.selectbox(
    "Experiment", experiments, format_func=names.get, key=state.key("audit_experiment", dataset.fingerprint)
)
chosen_audit = audit.audit(dataset.root, cache, found.backbone, found.image_size, split, experiment)
st.dataframe(
    pd.DataFrame(
        [(p.true, p.predicted, p.images_words(), percent(p.share)) for p in chosen_audit.confusions()],
        columns=["true class", "predicted as", "holdout images per run", "share of the true class"],
    ),
    hide_index=True,
)
st.caption(
    f"The experiment's {counted(chosen_audit.confused_runs, 'model')} trained on the most labels "
    f"({chosen_audit.confused_train:,} images), averaged (each scores the same holdout images); 95% "
    "intervals in brackets. The pairs to give more labels, clearer guidelines or a merged class."
)
