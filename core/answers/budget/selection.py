"""Which cached runs make a learning curve: one experiment on one dataset and split, and the runs'
observations for the curves."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.answers import curves
from core.base.errors import UserError
from core.data.datasets import Dataset, scan
from core.data.splits import HOLDOUT_SHARE, VAL_SHARE, SliceSpec, curve_slices, make_splits
from core.store import runs
from core.store.config import CURVE_SAMPLE_SEEDS, CURVE_SEEDS, RunConfig, Split, departures, grid
from core.store.measured import measured_once, pool_sizes
from core.store.record import Summary
from core.store.tables import experiment_label, match_experiment, plain_experiment


@dataclass(frozen=True)
class Selection:
    """The cached runs of one experiment on one dataset and split."""

    dataset: Dataset
    experiment: str
    experiments: tuple[str, ...]  # every experiment with runs on this dataset and split
    summaries: tuple[Summary, ...]
    cache_dir: Path
    configs: Mapping[str, RunConfig] = dataclasses.field(default_factory=dict)  # one per experiment

    def plain(self, experiment: str) -> str:
        """An experiment's label in words a stakeholder reads (:func:`plain_experiment`)."""
        config = self.configs.get(experiment)
        return plain_experiment(config) if config else experiment

    @property
    def classes(self) -> tuple[str, ...]:
        return self.dataset.classes

    @property
    def n_holdout(self) -> int:
        return self.summaries[0].n_holdout


def select(
    cache_dir: Path,
    data: str | Path,
    experiment: str | None = None,
    holdout: float = HOLDOUT_SHARE,
    val: float = VAL_SHARE,
    split_seed: int = 0,
) -> Selection:
    """The runs of ``experiment`` (its label, or a part of it that names one) on ``data`` as it is
    now; by default the experiment with the most slices, then the most runs, then the one closest
    to the usual training (:func:`core.store.config.departures`).

    Raises:
        UserError: no cached run on this dataset and split, or ``experiment`` names none or several.
    """
    dataset = scan(data, cache_dir)
    split = Split(holdout, val, split_seed)
    mine = [s for s in runs.list_runs(cache_dir) if _on(s, dataset, split)]
    if not mine:
        raise UserError(
            f"no cached runs for {dataset.root} (holdout {holdout:g}, val {val:g}, split seed "
            f"{split_seed}); train a learning curve first: python -m core sweep --preset curve "
            f"--data {dataset.root}"
        )
    by_experiment: dict[str, list[Summary]] = defaultdict(list)
    for summary in mine:
        by_experiment[experiment_label(summary.config)].append(summary)
    labels = tuple(
        sorted(
            by_experiment,
            key=lambda e: (
                -len(uniform_slices(by_experiment[e])),
                -len(by_experiment[e]),
                departures(by_experiment[e][0].config),
                e,
            ),
        )
    )
    chosen = labels[0] if experiment is None else match_experiment(experiment, labels)
    configs = {label: found[0].config for label, found in by_experiment.items()}
    measured = measured_once(by_experiment[chosen], pool_sizes(dataset, split))
    return Selection(dataset, chosen, labels, measured, cache_dir, configs)


def _on(summary: Summary, dataset: Dataset, split: Split) -> bool:
    return summary.info.fingerprint == dataset.fingerprint and summary.config.split == split


def splits_with_runs(cache_dir: Path, data: str | Path) -> list[tuple[Split, int]]:
    """Each split that ``data``'s cached runs were scored on, with how many runs, most first: a
    dataset measured on a small holdout and again on a larger one has two learning curves.

    Raises:
        UserError: the dataset is missing or unreadable.
    """
    dataset = scan(data, cache_dir)
    counts = Counter(
        s.config.split for s in runs.list_runs(cache_dir) if s.info.fingerprint == dataset.fingerprint
    )
    return counts.most_common()


def siblings(cache_dir: Path, summary: Summary) -> list[Summary]:
    """The runs of ``summary``'s experiment: same images, same split, same label (its dataset
    folder need not exist any more)."""
    return [
        s
        for s in runs.list_runs(cache_dir)
        if s.info.fingerprint == summary.info.fingerprint
        and s.config.split == summary.config.split
        and experiment_label(s.config) == experiment_label(summary.config)
    ]


def uniform_slices(summaries: list[Summary] | tuple[Summary, ...]) -> set[str]:
    """Slices that give every class the same count or share (per-class counts are left out)."""
    return {s.config.slice for s in summaries if not SliceSpec.parse(s.config.slice).counts}


def curve_grid(base: RunConfig, cache_dir: Path) -> list[RunConfig]:
    """The learning-curve sweep of ``base``'s experiment on its dataset: the curve slices its
    smallest class allows, over the curve's sample seeds.

    Raises:
        UserError: the dataset is missing or cannot be split.
    """
    dataset = scan(base.data, cache_dir)
    splits = make_splits(dataset.labels, dataset.classes, *base.split)
    return grid(base, curve_slices([len(pool) for pool in splits.pools]), CURVE_SEEDS, CURVE_SAMPLE_SEEDS)


def images_per_class(summary: Summary) -> float:
    return summary.n_train / len(summary.classes)


def observations(selection: Selection, up_to: float = math.inf) -> list[curves.Observation]:
    """One observation per run of a uniform slice, up to ``up_to`` images per class."""
    uniform = uniform_slices(selection.summaries)
    return [
        curves.Observation(images_per_class(s), s.accuracy, s.config.sample_seed, s.config.seed)
        for s in selection.summaries
        if s.config.slice in uniform and images_per_class(s) <= up_to
    ]
