"""CAM overlays on a page without drawing them in the page: ask the CAM worker, follow it, let the
person cancel, show the overlays once they exist (see :mod:`core.serving.cam_requests`)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.serving import cam_requests
from pages.common import state


def drawn(cache: Path, items: list[cam_requests.Item], method: str, source: str = "") -> None:
    """Return once every overlay of ``items`` exists; until then ask the CAM worker for them,
    show its progress with a Cancel button, and stop the page (it reruns itself when done)."""
    if not cam_requests.missing(cache, items, method, source):
        return
    key = cam_requests.request(cache, items, method, source)
    _follow(str(cache), key, method)
    st.stop()


@st.fragment(run_every=1.0)
def _follow(cache: str, key: str, method: str) -> None:
    status = cam_requests.status(Path(cache), key)
    if status.finished:
        if status.error:
            st.error(f"The {method} overlays were not drawn: {status.error}.")
            return
        st.rerun(scope="app")
    st.progress(
        status.fraction,
        text=f"Drawing {method} overlays in the background: {status.done} of "
        f"{status.total} (cached after the first time; you may leave this page)",
    )
    if st.button("Cancel", key=state.key("cam_cancel", key)):
        cam_requests.cancel(Path(cache), key)
