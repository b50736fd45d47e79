"""Cached reads of the on-disk cache, through :mod:`core.store.runs`. A complete run never changes,
so its files are cached by run id; the list of runs is re-read only when the set of run
folders changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.answers import audit, budget
from core.base.errors import UserError
from core.data.datasets import Dataset, folder_stamp, load_rgb, scan
from core.data.images import square
from core.store import run_queries as rq
from core.store import runs
from core.store.config import DEFAULT_SPLIT, RunConfig, Split
from core.store.measured import measured_per_experiment
from core.store.record import Metrics, Predictions, Summary
from core.store.tables import experiment_label, runs_frame


@st.cache_data(show_spinner=False, max_entries=8)
def _listing(cache: str, ids: tuple[str, ...]) -> runs.Listing:
    return runs.scan_runs(Path(cache))


def run_table(cache: Path) -> pd.DataFrame:
    """Every complete run as a row (see :func:`core.store.tables.runs_frame`), newest first."""
    return runs_frame(_listing(str(cache), runs.complete_ids(cache)).summaries)


def summaries(cache: Path) -> list[Summary]:
    """Every complete run's summary, newest first (re-read when run folders come or go)."""
    return _listing(str(cache), runs.complete_ids(cache)).summaries


def with_audited_variants(
    cache: Path, table: pd.DataFrame
) -> tuple[pd.DataFrame, dict[tuple[str, str], Predictions]]:
    """The runs of ``table``, each measurement once (:func:`core.store.measured.measured_per_experiment`:
    "5%" of a 400-image pool and "20/class" are one slice), and for each dataset with holdout
    images left out on the Audit page, the same runs rescored without them
    (:func:`core.answers.audit.audited_variants`) under the variant's own dataset label; with the
    rescored predictions by (variant, run id)."""
    shown = set(rq.run_ids(table))
    measured = measured_per_experiment([s for s in summaries(cache) if s.run_id in shown], cache)
    variants = audit.audited_variants(cache, measured, lambda rid: predictions(str(cache), rid))
    frames = [
        runs_frame(measured),
        *(runs_frame(list(v.summaries)).assign(dataset=v.label) for v in variants),
    ]
    rescored = {(v.label, rid): kept for v in variants for rid, kept in v.predictions.items()}
    return pd.concat(frames, ignore_index=True), rescored


def experiment_names(cache: Path, table: pd.DataFrame) -> dict[str, str]:
    """Each experiment of the runs table in words (or by its label with technical names on),
    from one of its runs' configuration."""
    from core.store.tables import plain_experiment
    from pages.common.state import technical

    first = table.drop_duplicates("experiment")
    return {
        r.experiment: r.experiment if technical() else plain_experiment(summary(str(cache), r.run_id).config)
        for r in first.itertuples()
    }


def damaged_runs(cache: Path) -> dict[str, str]:
    """Run ids whose folders do not check out, with the reason."""
    return _listing(str(cache), runs.complete_ids(cache)).damaged


@st.cache_resource(show_spinner=False, max_entries=5000)
def predictions(cache: str, run_id: str) -> Predictions:
    """A run's holdout predictions, shared by all sessions without copies (st.cache_data would
    unpickle a copy per call: 200 runs took most of a second). The arrays are read-only, so no
    page can change what another sees."""
    loaded = runs.load(Path(cache), run_id).predictions()
    for array in (loaded.probs, loaded.labels, loaded.image_index):
        array.flags.writeable = False
    return loaded


@st.cache_data(show_spinner=False, max_entries=2000)
def metrics(cache: str, run_id: str) -> Metrics:
    return runs.load(Path(cache), run_id).metrics()


@st.cache_data(show_spinner=False, max_entries=2000)
def summary(cache: str, run_id: str) -> Summary:
    return runs.load(Path(cache), run_id).summary


@st.cache_data(show_spinner="Checking images…", max_entries=16)
def _dataset(path: str, cache: str, stamp: int) -> Dataset:
    return scan(path, Path(cache))


def dataset(path: str, cache: Path) -> Dataset:
    """A scanned dataset, re-scanned when files in the folder come or go."""
    return _dataset(path, str(cache), folder_stamp(path))


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnails(root: str, relative_paths: tuple[str, ...], size: int) -> list[np.ndarray]:
    """Square thumbnails of dataset images, decoded once per page session set."""
    return [square(load_rgb(Path(root) / p), size) for p in relative_paths]


# The fits below are keyed by the complete runs' ids, not by the cache folder (``_cache``, with
# its underscore, is left out of Streamlit's key): a complete run never changes, so the same runs
# give the same curve wherever the folder is, and a copy of a cache (a test's, a restored backup)
# does not fit it again. Seconds each: the bootstrap refits every family a hundred times.
@st.cache_data(show_spinner="Fitting the curve families with bootstrap intervals…", max_entries=32)
def _analysis(
    _cache: str, data: str, experiment: str | None, ids: tuple[str, ...], split: Split
) -> budget.Analysis:
    return budget.analyse(budget.select(Path(_cache), data, experiment, *split))


def analysis(
    cache: Path, data: str, experiment: str | None = None, split: Split = DEFAULT_SPLIT
) -> budget.Analysis:
    """The learning curve of an experiment on a dataset and split, fitted once per set of cached runs.

    Raises:
        UserError: no runs for the dataset, or fewer than 3 slices.
    """
    return _analysis(str(cache), data, experiment, runs.complete_ids(cache), split)


@st.cache_data(show_spinner="Putting the story together…", max_entries=16)
def _story(cache: str, data: str, experiment: str | None, target: float | None, split: Split, ids: tuple):
    from core.present.story import tell

    return tell(Path(cache), data, experiment, target, split)


def story(cache: Path, data: str, experiment: str | None, target: float | None, split: Split = DEFAULT_SPLIT):
    """:func:`core.present.story.tell`, once per set of cached runs.

    Raises:
        UserError: as :func:`core.present.story.tell`.
    """
    return _story(str(cache), data, experiment, target, split, runs.complete_ids(cache))


@st.cache_data(show_spinner=False, max_entries=32)
def selection(
    cache: str, data: str, experiment: str | None, ids: tuple[str, ...], split: Split = DEFAULT_SPLIT
) -> budget.Selection:
    return budget.select(Path(cache), data, experiment, *split)


@st.cache_data(show_spinner=False, max_entries=32)
def splits_with_runs(cache: str, data: str, ids: tuple[str, ...]) -> list[tuple[Split, int]]:
    return budget.splits_with_runs(Path(cache), data)


def html_report(cache: Path, data: str, experiment: str, target: float, split: Split = DEFAULT_SPLIT):
    """A callable the download button runs only when pressed (it draws CAMs and inlines plotly)."""
    from core.present.report_html import render

    return lambda: render(cache, data, target, experiment, split)


def _runs_of(selection: budget.Selection) -> tuple[str, str, tuple[str, ...]]:
    """What a selection's fits depend on: its dataset, experiment and runs (not its folder)."""
    return str(selection.dataset.root), selection.experiment, tuple(s.run_id for s in selection.summaries)


@st.cache_data(show_spinner="Fitting each class's curve…", max_entries=32)
def _allocation(_selection: budget.Selection, key: tuple, labels: int, base: str | None):
    return budget.allocate(_selection, labels, base, room=base is not None)


def allocation(selection: budget.Selection, labels: int, base: str | None):
    """:func:`core.answers.budget.allocate` from ``base`` (within the pool when it is given)."""
    return _allocation(selection, _runs_of(selection), labels, base)


@st.cache_data(show_spinner=False, max_entries=32)
def _class_curves(_selection: budget.Selection, key: tuple) -> dict[str, tuple[budget.ClassPoint, ...]]:
    return budget.class_curves(_selection)


def class_curves(selection: budget.Selection) -> dict[str, tuple[budget.ClassPoint, ...]]:
    return _class_curves(selection, _runs_of(selection))


def base_counts(selection: budget.Selection, base: str) -> dict[str, int]:
    return budget.per_class_counts(selection, next(s for s in selection.summaries if s.config.slice == base))


def suggested_target(cache: Path, config: RunConfig) -> float:
    """The target the Learning curve and Present pages open on for ``config``'s experiment (so
    that Trust opens on the accuracy the room heard there), or 95% where it has no curve."""
    try:
        fitted = analysis(cache, config.data, experiment_label(config), config.split)
    except UserError:
        return 0.95
    return fitted.suggested_target()


@st.cache_data(show_spinner="Measuring calibration…", max_entries=256)
def calibration(cache: str, run_id: str):
    from core.answers.trust import run_calibration

    return run_calibration(Path(cache), run_id)


@st.cache_data(show_spinner=False, max_entries=1024)
def threshold(cache: str, run_id: str, target: float):
    from core.answers.trust import run_threshold

    return run_threshold(Path(cache), run_id, target)


@st.cache_data(show_spinner="Measuring every run of the experiment…", max_entries=32)
def trust_by_size(cache: str, data: str, run_id: str, target: float, ids: tuple[str, ...]):
    """Calibration and automation against images per class, for the experiment of ``run_id``."""
    from core.answers.trust import by_size

    config = runs.load(Path(cache), run_id).summary.config
    selection = budget.select(Path(cache), data, experiment_label(config), *config.split)
    return by_size(selection, target)
