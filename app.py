"""Home page: what the tool answers, the dataset in use, and what is in the cache."""

import streamlit as st

from core.paths import DEFAULT_DATA, cache_root
from core.runs import list_runs

st.set_page_config(page_title="How Much Data?", page_icon="📊", layout="wide")

st.title("How Much Data?")
st.markdown(
    "How many labelled images per class does your image classifier really need? "
    "Train the same pretrained backbone on nested slices of your data (1 or 3 images per "
    "class, 5% … 100%) and compare them on one fixed holdout set."
)

runs = list_runs(cache_root())
left, right = st.columns(2)
left.metric("Default dataset", DEFAULT_DATA.name)
right.metric("Cached runs", len(runs))
if not runs:
    st.info(
        "No runs cached yet. Run the original experiment's grid from a terminal: "
        "`make sweep` (about two minutes on a laptop CPU)."
    )
else:
    import pandas as pd

    st.dataframe(
        pd.DataFrame(
            [{"run": r["run_id"], "backbone": r["config"]["backbone"], "mode": r["config"]["mode"],
              "slice": r["config"]["slice"], "seed": r["config"]["seed"],
              "holdout accuracy": r["holdout_accuracy"]} for r in runs]
        ),
        hide_index=True,
    )
