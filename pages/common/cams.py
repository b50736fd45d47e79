"""CAM overlays on a page without drawing them in the page: ask the CAM worker, follow it, let the
person cancel, show the overlays once they exist (see :mod:`core.serving.cam_requests`). A method
that costs seconds per image says how long it will take and waits to be asked."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.answers.cam import PER_CHANNEL, TITLES, seconds_per_image
from core.serving import cam_requests
from pages.common import signin, state

STOPPED = "cam_stopped"  # session key: what the last drawing the person stopped had drawn


def drawn(cache: Path, items: list[cam_requests.Item], method: str, source: str = "") -> None:
    """Return once every overlay of ``items`` exists; until then ask the CAM worker for them
    (at once for a quick method, after a button showing the estimated time for a slow one or
    after a cancel), show its progress and time left with a Cancel button, and stop the page
    (it reruns itself when done)."""
    todo = cam_requests.missing(cache, items, method, source)
    if not todo:
        return
    estimate = seconds_per_image(cache, todo[0][0], method) if method in PER_CHANNEL else None
    key = cam_requests.pending(cache, items, method, source)
    if key is None and not signin.can_write():  # a viewer asks for nothing to be drawn
        st.info(f"{len(todo)} {TITLES[method]} maps are not drawn yet; {signin.write_help()}.")
        st.stop()
    if key is None:
        if not _asked(method, len(todo), estimate):
            st.stop()
        key = cam_requests.request(cache, items, method, source)
    _follow(str(cache), key, method, estimate)
    st.stop()


def _asked(method: str, count: int, estimate: float | None) -> bool:
    """Whether to start drawing now: at once for a quick method, unless the person stopped the
    last drawing; else when they press the button, which says what it will cost."""
    stopped = st.session_state.get(STOPPED)
    if estimate is None and stopped is None:
        return True
    if stopped:
        st.info(stopped)
    if estimate is not None:
        st.info(
            f"{TITLES[method]} runs the model once for every few of the features it computes, over a "
            f"thousand passes per image: about {duration(estimate)} per image on this machine, so these "
            f"{count} maps would take about {duration(estimate * count)}. Maps already drawn are kept."
        )
    cost = f" (about {duration(estimate * count)})" if estimate is not None else ""
    if st.button(
        f"Draw {count} {TITLES[method]} maps{cost}", type="primary", key="cam_draw", **signin.locked()
    ):
        st.session_state.pop(STOPPED, None)
        return True
    return False


@st.fragment(run_every=1.0)
def _follow(cache: str, key: str, method: str, estimate: float | None) -> None:
    status = cam_requests.status(Path(cache), key)
    if not status.finished and not status.stopping:
        st.progress(status.fraction, text=_progress_text(status, method, estimate))
        if not st.button("Cancel", key=state.key("cam_cancel", key), **signin.locked()):
            return
        status = cam_requests.cancel(Path(cache), key, wait_s=3.0)  # the worker stops within a pass
    if status.cancelled:
        st.session_state[STOPPED] = (
            f"Stopped, as you asked: {status.done} of {status.total} {TITLES[method]} maps had been "
            "drawn (they are kept); nothing is being drawn now."
        )
        st.info(st.session_state[STOPPED])
    elif not status.finished:
        st.info("Stopping the drawing, as you asked…")
    elif status.error:
        st.error(f"The {TITLES[method]} maps could not be drawn: {status.error}.")
    else:
        st.rerun(scope="app")


def _progress_text(status: cam_requests.Status, method: str, estimate: float | None) -> str:
    left = status.seconds_left(time.time())
    if left is not None:
        when = f"about {duration(left)} left"
    elif estimate is not None:
        when = f"about {duration(estimate * status.total)} in all (estimated before starting)"
    else:
        when = "starting"
    return (
        f"Drawing {TITLES[method]} maps in the background: {status.done} of {status.total}, {when} "
        "(kept once drawn; you may leave this page)"
    )


def duration(seconds: float) -> str:
    """A time span as a person says it: "2 s", "40 s", "3 min", "1 h 5 min"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"
