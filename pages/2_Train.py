"""Train: queue runs for the background worker and watch them train."""

import dataclasses

import streamlit as st

from core.base.errors import UserError
from core.data.augment import POLICIES
from core.data.splits import ORIGINAL_SLICES
from core.models.backbones import get_spec, list_backbones, weights_available
from core.serving import jobs
from core.store.config import MODES, SOLVERS, RunConfig, grid, parse_seeds, parse_slices, uses_features
from pages.common import job_queue, layout, signin, state

layout.header(
    "Train",
    "Queue runs on the background worker; the page stays responsive and "
    "nothing is lost when the browser closes.",
)
cache = state.cache_dir()
st.markdown(f"Dataset: `{state.dataset()}` (change it on the Data page)")


def _backbone_label(name: str) -> str:
    spec = get_spec(name)
    if spec.weights == "none":
        return f"{name} (scratch only)"
    return f"{name} ({'weights ready' if weights_available(spec) else 'downloads weights'})"


DEFAULTS = {
    "train_slices": ["1/class", "3/class", "5%", "20%"],
    "train_extra": "",
    "train_backbone": list_backbones()[0],
    "train_mode": MODES[0],
    "train_aug": POLICIES[0],
    "train_seeds": "1",
    "train_epochs": 0,
    "train_lr": 0.0,
    "train_batch": 0,
    "train_size": 0,
    "train_solver": SOLVERS[0],
}
SOLVER_LABELS = {
    "lbfgs": "L-BFGS to convergence, C chosen on validation",
    "adamw": "AdamW epochs (the heads of a grid stacked in one fit)",
}


def _number(low: float, high: float):
    return lambda value: isinstance(value, int | float) and low <= value <= high


state.form_values(
    "train",
    DEFAULTS,
    {
        "train_slices": lambda value: isinstance(value, list) and set(value) <= set(ORIGINAL_SLICES),
        "train_extra": lambda value: isinstance(value, str),
        "train_backbone": lambda value: value in list_backbones(),
        "train_mode": lambda value: value in MODES,
        "train_aug": lambda value: value in POLICIES,
        "train_seeds": lambda value: isinstance(value, str),
        "train_epochs": _number(0, 500),
        "train_lr": _number(0.0, 1.0),
        "train_batch": _number(0, 1024),
        "train_size": _number(0, 1024),
        "train_solver": lambda value: value in SOLVERS,
    },
)
with st.form("train_form"):
    slices = st.multiselect("Slices", list(ORIGINAL_SLICES), key="train_slices")
    extra = st.text_input("More slices (comma-separated, e.g. 10/class, 12.5%)", key="train_extra")
    cols = st.columns(4)
    backbone = cols[0].selectbox(
        "Backbone", list_backbones(), format_func=_backbone_label, key="train_backbone"
    )
    mode = cols[1].selectbox("Mode", MODES, key="train_mode")
    aug = cols[2].selectbox("Augmentation", POLICIES, key="train_aug")
    seeds = cols[3].text_input("Seeds", key="train_seeds")
    with st.expander("Hyper-parameters (0 = the default for the mode)"):
        cols = st.columns(4)
        epochs = cols[0].number_input("Epochs", 0, 500, key="train_epochs")
        lr = cols[1].number_input("Learning rate", 0.0, 1.0, format="%.4f", key="train_lr")
        batch = cols[2].number_input("Batch size", 0, 1024, key="train_batch")
        size = cols[3].number_input("Image size (px)", 0, 1024, key="train_size")
        solver = st.radio(
            "Head on cached features (frozen backbone, no augmentation)",
            SOLVERS,
            format_func=SOLVER_LABELS.get,
            key="train_solver",
            horizontal=True,
        )
    launch = st.form_submit_button("Launch", type="primary", **signin.locked())

if launch:
    try:
        chosen = list(dict.fromkeys(slices + parse_slices(extra)))
        seed_list = parse_seeds(seeds, flag="Seeds")
        if not chosen or not seed_list:
            raise UserError("choose at least one slice and one seed")
        split = state.split()
        base = RunConfig(
            data=state.dataset(),
            backbone=backbone,
            mode=mode,
            slice=chosen[0],
            aug=aug,
            epochs=epochs or None,
            lr=lr or None,
            batch_size=batch or None,
            image_size=size or None,
            holdout=split.holdout,
            val=split.val,
            split_seed=split.seed,
        )
        if uses_features(base):  # the solver applies to a head on cached features only
            base = dataclasses.replace(base, solver=solver)
        state.remember_form("train", DEFAULTS)
        st.success(jobs.submit_and_tally(cache, grid(base, chosen, seed_list)))
    except UserError as error:
        st.error(str(error))


job_queue.view(cache)
