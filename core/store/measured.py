"""Each measurement once: runs of one experiment that trained on the same images count as one.

The learning curve (:func:`core.answers.budget.select`), the Holdout page's bars and the
fine-tune crossover all read runs through here, so that "20/class" and "5%" of a 400-image pool
are one slice under one name wherever a slice is shown.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from core.base.errors import UserError
from core.data.datasets import Dataset, scan
from core.data.splits import SliceSpec, make_splits
from core.store.config import Split
from core.store.record import Summary
from core.store.tables import experiment_label


def pool_sizes(dataset: Dataset, split: Split) -> dict[str, int]:
    """The training pool of each class of ``dataset`` under ``split``."""
    pools = make_splits(dataset.labels, dataset.classes, *split).pools
    return {name: len(pool) for name, pool in zip(dataset.classes, pools, strict=True)}


def measured_once(summaries: Iterable[Summary], sizes: Mapping[str, int]) -> tuple[Summary, ...]:
    """Each measurement once, under one slice name.

    Two slices that take the same count from every class train on the same images for a sample
    seed ("5%" of a 400-image pool is "20/class"), and a head fitted by L-BFGS starts from zeros,
    so its seed changes nothing. The original grid beside a curve sweep measured such runs twice,
    and the fit counted each twice as if it were new evidence. A run is renamed to the slice most
    runs of its size carry (ties: the first by name) and kept once per images, sample seed and,
    where training depends on it, seed (the first by run id). The whole pool is the same images
    whatever the sample seed: a curve sweep once trained "100%" three times and counted three
    identical accuracies as three measurements, with a spread of zero.
    """
    summaries, classes = list(summaries), tuple(sizes)
    groups: dict[tuple[int, ...], list[Summary]] = defaultdict(list)
    for summary in summaries:
        spec = SliceSpec.parse(summary.config.slice)
        groups[tuple(min(spec.count(c, sizes[c]), sizes[c]) for c in classes)].append(summary)
    whole = tuple(sizes[c] for c in classes)
    kept: dict[str, Summary] = {}
    for counts, group in groups.items():
        named = Counter(s.config.slice for s in group)
        name = min(named, key=lambda text: (-named[text], text))
        seen: set[tuple[int | None, int | None]] = set()
        for summary in sorted(group, key=lambda s: (s.config.slice != name, s.run_id)):
            config = summary.config
            key = (
                None if counts == whole else config.sample_seed,
                None if config.solver == "lbfgs" else config.seed,
            )
            if key not in seen:
                seen.add(key)
                info = dataclasses.replace(summary.info, config=dataclasses.replace(config, slice=name))
                kept[summary.run_id] = dataclasses.replace(summary, info=info)
    return tuple(kept[s.run_id] for s in summaries if s.run_id in kept)


def measured_per_experiment(summaries: Sequence[Summary], cache_dir: Path) -> list[Summary]:
    """:func:`measured_once` within each experiment on each dataset and split, in the order
    given. Runs of a dataset whose folder now holds other images (or is gone) are kept as they
    are: their pools can no longer be counted."""
    groups: dict[tuple[str, Split, str], list[Summary]] = defaultdict(list)
    for summary in summaries:
        groups[summary.info.fingerprint, summary.config.split, experiment_label(summary.config)].append(
            summary
        )
    kept: dict[str, Summary] = {}
    pools: dict[tuple[str, Split], dict[str, int] | None] = {}  # one scan per dataset and split
    for (fingerprint, split, _), group in groups.items():
        if (fingerprint, split) not in pools:
            pools[fingerprint, split] = _current_pools(group[0].config.data, fingerprint, split, cache_dir)
        sizes = pools[fingerprint, split]
        kept.update((s.run_id, s) for s in (group if sizes is None else measured_once(group, sizes)))
    return [kept[s.run_id] for s in summaries if s.run_id in kept]


def _current_pools(data: str, fingerprint: str, split: Split, cache_dir: Path) -> dict[str, int] | None:
    try:
        dataset = scan(data, cache_dir)
    except UserError:  # the folder is gone or unreadable now
        return None
    return pool_sizes(dataset, split) if dataset.fingerprint == fingerprint else None
