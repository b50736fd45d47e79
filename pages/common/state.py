"""What every page shares: the cache folder, the dataset in use and the split new runs use.

Both are kept in ``cache/ui.json`` (the dataset in the session too), so a browser refresh, a new
tab or a restarted server opens on the same dataset and split. A read-only session (a viewer)
writes no file: its choices are kept in the session only.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.base.paths import DEFAULT_DATA, cache_root, read_json, read_only_reason, write_json
from core.store.config import Split


def cache_dir() -> Path:
    return cache_root()


def _settings() -> Path:
    return cache_dir() / "ui.json"


SESSION_SETTINGS = "_hmd_ui"  # a read-only session's settings, over the saved ones


def _saved() -> dict:
    try:
        saved = read_json(_settings())
    except (OSError, ValueError):  # no settings yet, or a damaged file
        saved = {}
    return {**(saved if isinstance(saved, dict) else {}), **st.session_state.get(SESSION_SETTINGS, {})}


def _save(**values) -> None:
    if read_only_reason() is not None:
        st.session_state[SESSION_SETTINGS] = {**st.session_state.get(SESSION_SETTINGS, {}), **values}
        return
    write_json(_settings(), {**_saved(), **values})


def dataset() -> str:
    """The dataset folder chosen on the Data page (the bundled one until then)."""
    if "dataset" not in st.session_state:
        saved = _saved().get("dataset")
        st.session_state["dataset"] = saved if saved and Path(saved).is_dir() else str(DEFAULT_DATA)
    return st.session_state["dataset"]


def set_dataset(path: str) -> None:
    if st.session_state.get("dataset") != path:
        st.session_state["dataset"] = path
        _save(dataset=path)


def show_dataset(path: str) -> None:
    """Make ``path`` the dataset in use for this session only (a shared link opened it), leaving
    the saved choice as it was: opening a link writes nothing."""
    st.session_state["dataset"] = path


def pool(data: str) -> str:
    """The folder of unlabelled images chosen for ``data`` on the Data page ("" until one is):
    the Next batch page ranks it."""
    pools = _saved().get("pools")
    return pools.get(data, "") if isinstance(pools, dict) else ""


def set_pool(data: str, folder: str) -> None:
    pools = _saved().get("pools")
    _save(pools={**(pools if isinstance(pools, dict) else {}), data: folder})


def split() -> Split:
    """The holdout share, validation share and split seed new runs use (set on the Data page)."""
    saved = _saved().get("split")
    try:
        return Split(*saved) if saved else Split()
    except TypeError:
        return Split()


def set_split(chosen: Split) -> None:
    _save(split=list(chosen))


def form_values(form: str, defaults: dict, valid: dict) -> None:
    """Fill a form's widgets with the values it was last launched with (a reload, a new tab or a
    restarted server keeps them), else ``defaults``; a saved value ``valid`` rejects (an option
    that no longer exists) falls back to the default. Call before the widgets are drawn, and
    give the widgets no value of their own."""
    saved = _saved().get("forms", {}).get(form, {})
    saved = saved if isinstance(saved, dict) else {}
    for key, default in defaults.items():
        if key not in st.session_state:
            value = saved.get(key, default)
            st.session_state[key] = value if valid.get(key, lambda _: True)(value) else default


def remember_form(form: str, keys) -> None:
    """Keep the values the form's widgets hold now, for :func:`form_values`."""
    forms = _saved().get("forms", {})
    forms = forms if isinstance(forms, dict) else {}
    _save(forms={**forms, form: {key: st.session_state[key] for key in keys}})


def key(name: str, *scope: object) -> str:
    """A widget's key: its name on the page, then what it belongs to (a dataset, a run, a
    column). Two widgets collide only if they share both, so a key never depends on a count or
    a label that two widgets can happen to share (two buttons keyed by their run counts did,
    on an experiment of one run)."""
    return "::".join([name, *map(str, scope)])


def technical() -> bool:
    """Whether pages name things technically (the sidebar's switch): plain words by default,
    for a room of people who do not train models. Kept under a key of its own, not the
    widget's, so that it survives moving from page to page."""
    return bool(st.session_state.get("technical", False))


def remember_technical() -> None:
    st.session_state["technical"] = bool(st.session_state["technical_names"])


def experiment_name(selection, label: str) -> str:
    """How a page names an experiment: in words, or by its technical label when asked."""
    return label if technical() else selection.plain(label)
