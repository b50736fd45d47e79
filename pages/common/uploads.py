"""The Data page's "add your own images" block: zips of class folders, or images under a class
name, imported safely (see :mod:`core.data.upload`) with a progress bar."""

from __future__ import annotations

import streamlit as st

from core.base.errors import UserError
from core.base.words import counted
from core.data.datasets import IMAGE_EXTENSIONS
from core.data.upload import DEFAULT_LIMITS, ImportReport, import_images, import_zips
from pages.common import signin


def block() -> str | None:
    """Draw the upload controls; the folder of a dataset just imported, else None."""
    st.caption(
        f"{DEFAULT_LIMITS.describe()} Uploads go to data/uploads/ on this machine (not into git); a "
        f"browser upload may be up to {st.get_option('server.maxUploadSize'):,} MB."
    )
    kind = st.radio(
        "Add", ["zips of class folders", "images of one class"], horizontal=True, key="upload_kind"
    )
    name = st.text_input("Dataset name", key="upload_name", placeholder="e.g. textiles")
    if kind == "zips of class folders":
        files = st.file_uploader(
            "Zip files: one folder of images per class inside",
            type=["zip"],
            accept_multiple_files=True,
            key="upload_zips",
            **signin.locked(),
        )
        class_name = None
    else:
        files = st.file_uploader(
            "Images",
            type=sorted(e.strip(".") for e in IMAGE_EXTENSIONS),
            accept_multiple_files=True,
            key="upload_images",
            **signin.locked(),
        )
        class_name = st.text_input("Their class", key="upload_class", placeholder="e.g. stained")
    if not st.button(
        "Import",
        type="primary",
        key="upload_go",
        disabled=not files or not name.strip() or not signin.can_write(),
    ):
        return None
    bar = st.progress(0.0, text="Importing…")

    def report(done: int, total: int) -> None:
        if total and (done == total or done % 50 == 0):
            bar.progress(done / total, text=f"Extracting: {done:,} of {total:,} images")

    try:
        if class_name is None:
            imported = import_zips([(f.name, f) for f in files], name, on_progress=report)
        else:
            imported = import_images([(f.name, f) for f in files], class_name, name, on_progress=report)
    except UserError as error:
        bar.empty()
        st.error(str(error))
        return None
    bar.empty()
    st.session_state["upload_done"] = imported  # shown after the page reruns on the new dataset
    return str(imported.root)


def imported_summary() -> None:
    """What the last import brought in, once, on the page that opens the new dataset."""
    if done := st.session_state.pop("upload_done", None):
        _summary(done)


def _summary(imported: ImportReport) -> None:
    counts = ", ".join(f"{name} {n}" for name, n in imported.images.items())
    st.success(f"Imported {sum(imported.images.values()):,} images into {imported.name}: {counts}.")
    if imported.skipped:
        with st.expander(f"{counted(len(imported.skipped), 'file')} skipped"):
            st.dataframe([{"file": f, "why": why} for f, why in imported.skipped], hide_index=True)


def deletion() -> None:
    """A picker of the uploaded datasets and a button that deletes one (its runs stay cached)."""
    from core.data.upload import delete_upload, list_uploads

    uploaded = [p.name for p in list_uploads()]
    if not uploaded:
        return
    with st.expander("Delete an uploaded dataset"):
        name = st.selectbox("Uploaded dataset", uploaded, key="upload_delete_name")
        st.caption(
            "Its images are removed from data/uploads/. Runs trained on it stay in the cache (and on the "
            "result pages) until you delete them there or clear the cache."
        )
        if st.button(f"Delete {name}", key="upload_delete", **signin.locked()):
            delete_upload(name)
            st.rerun()
