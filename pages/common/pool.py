"""The Data page's "Unlabelled pool" block: the folder of images nobody has labelled yet that the
Next batch page chooses from, typed as a path on this machine or uploaded as a zip (unpacked
safely, in any layout, by :func:`core.data.upload.import_pool`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.base.errors import UserError
from core.data.upload import import_pool
from pages.common import signin, state


def block(data: str) -> None:
    """The pool chosen for ``data``, and the two ways to choose another."""
    st.subheader("Unlabelled pool")
    current = state.pool(data)
    st.caption(
        "Images nobody has labelled yet, in any folders: the Next batch page chooses which of them "
        "to label next. " + (f"In use: {current}" if current else "None chosen for this dataset yet.")
    )
    left, right = st.columns(2)
    typed = signin.path_input(left, "A folder on this machine", "pool_path")
    if left.button("Use this folder", key="pool_use", disabled=not typed or not signin.can_write()):
        if Path(typed).expanduser().is_dir():
            state.set_pool(data, str(Path(typed).expanduser().resolve()))
            st.rerun()
        left.error(f"{typed} is not a folder on this machine")
    uploaded = st.session_state.setdefault("pool_uploads", 0)  # a new key empties the uploader
    upload = right.file_uploader(
        "Or a zip of images", type=["zip"], key=f"pool_zip_{uploaded}", **signin.locked()
    )
    if right.button("Import the pool", key="pool_import", disabled=upload is None or not signin.can_write()):
        try:
            imported = import_pool(upload.name, upload, Path(upload.name).stem)
        except UserError as error:
            right.error(str(error))
            return
        state.set_pool(data, str(imported.root))
        st.session_state["pool_imported"] = (
            f"Imported {sum(imported.images.values()):,} images into {imported.root}."
        )
        st.rerun()
    if done := st.session_state.pop("pool_imported", None):
        st.success(done)
