"""The backtest on the user's own labelled data: would a strategy have saved labels against random?

The runs' fixed splits (:func:`core.data.splits.make_splits`) give the holdout every round is
scored on, the validation set the head's penalty is chosen on (as for every run), and the
training pool, whose labels are hidden behind an :class:`Oracle`. Each seed draws ``start``
labels per class from the pool (the runs' own nested draw, so seed 1 starts from the images of
the ``N/class`` slice with sample seed 1), shared by every strategy so that they are compared
on the same start. Then, for each strategy, ``rounds`` times: rank the unlabelled pool with the
current head, reveal the labels of ``batch`` x classes picks (``--batch`` is per class, as
``--start`` is, so a round costs the same on any number of classes), refit the head on the
cached frozen features with the runs' L-BFGS solver, and score it on the holdout.

The spread is an 80% t-interval over seeds (Student's t with seeds - 1 degrees of freedom): the
seeds are few (3 by default), so a normal interval would be too narrow, and a percentile of 3
values is no interval at all. The headline, ``labels_to_match_random``, is the labels a
strategy needs to reach random's final mean accuracy, read off its mean curve by linear
interpolation between rounds, as a share of random's labels; its interval is the 80%
t-interval of the same share per seed, each seed's strategy against the same seed's random
(paired: the same start set). A strategy beats random beyond the noise when the whole interval
is below 1.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.answers.nextbatch.strategies import STRATEGIES, Candidates, select
from core.base.device import single_thread
from core.base.errors import UserError, check_choice
from core.base.intervals import Estimate, json_float, t_interval
from core.base.words import counted
from core.data.splits import SliceSpec, Splits
from core.engine.pipeline import prepare, run_inputs
from core.store.config import ORIGINAL_BACKBONE, RunConfig
from core.store.runs import RunFolder

LEVEL = 0.8  # the intervals over seeds


@dataclass(frozen=True)
class Settings:
    """What the simulation replays: strategies (random always among them: it is the baseline),
    the start and the batch per class, the rounds and the seeds."""

    strategies: tuple[str, ...] = STRATEGIES
    start: int = 2  # labels per class before the first round
    batch: int = 20  # labels per class added each round
    rounds: int = 6
    seeds: tuple[int, ...] = (1, 2, 3)

    def checked(self, pool_sizes: list[int]) -> Settings:
        """These settings, random first, validated against the per-class training pools.

        Raises:
            UserError: an unknown strategy, a count below 1, no seeds, or a pool too small for
                the rounds.
        """
        for name in self.strategies:
            check_choice("strategy", name, STRATEGIES)
        for flag, value in (("--start", self.start), ("--batch", self.batch), ("--rounds", self.rounds)):
            if value < 1:
                raise UserError(f"{flag} must be at least 1, not {value}")
        if not self.seeds:
            raise UserError("--seeds needs at least one seed")
        needed = len(pool_sizes) * (self.start + self.rounds * self.batch)
        if needed > sum(pool_sizes):
            raise UserError(
                f"the simulation labels {self.start} + {self.rounds} x {self.batch} images per class "
                f"({needed} in all), but the training pool holds {sum(pool_sizes)}: lower --rounds or --batch"
            )
        ordered = ("random", *[s for s in dict.fromkeys(self.strategies) if s != "random"])
        return Settings(ordered, self.start, self.batch, self.rounds, tuple(dict.fromkeys(self.seeds)))

    @property
    def replays(self) -> int:
        """The rounds replayed in all, random's included (what a progress bar counts): one per
        strategy, round and seed."""
        strategies = {"random", *self.strategies}
        return len(strategies) * self.rounds * len(set(self.seeds))

    def to_dict(self) -> dict:
        return {
            "strategies": list(self.strategies),
            "start": self.start,
            "batch": self.batch,
            "rounds": self.rounds,
            "seeds": list(self.seeds),
        }


@dataclass(frozen=True)
class RoundPoint:
    """Holdout accuracy after a round: the mean over seeds and its interval."""

    labels: int
    accuracy: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return {
            "labels": self.labels,
            "accuracy": json_float(self.accuracy),
            "low": json_float(self.low),
            "high": json_float(self.high),
        }


@dataclass(frozen=True)
class Curve:
    """One strategy's holdout accuracy against labels spent: per seed, per round (the start first)."""

    strategy: str
    labels: tuple[int, ...]
    accuracy: tuple[tuple[float, ...], ...]  # [seed][round]

    def mean(self) -> np.ndarray:
        return np.asarray(self.accuracy).mean(axis=0)

    def rounds(self) -> tuple[RoundPoint, ...]:
        by_round = np.asarray(self.accuracy).T
        points = [
            (labels, t_interval(values, within=(0.0, 1.0)))
            for labels, values in zip(self.labels, by_round, strict=True)
        ]
        return tuple(RoundPoint(labels, e.estimate, e.low, e.high) for labels, e in points)


def labels_to_reach(labels: tuple[int, ...], accuracy: np.ndarray, target: float) -> float | None:
    """Labels at which the curve first reaches ``target``, interpolated linearly between rounds;
    None when it never does."""
    reached = np.flatnonzero(np.asarray(accuracy) >= target - 1e-12)
    if not len(reached):
        return None
    i = int(reached[0])
    if i == 0:
        return float(labels[0])
    a0, a1 = accuracy[i - 1], accuracy[i]
    return labels[i - 1] + (target - a0) / (a1 - a0) * (labels[i] - labels[i - 1])


@dataclass(frozen=True)
class Simulation:
    """Every strategy's curve on one dataset's fixed holdout, with the headline against random."""

    dataset: str
    backbone: str
    image_size: int
    holdout_size: int
    settings: Settings
    curves: tuple[Curve, ...]  # random first

    @property
    def random(self) -> Curve:
        return self.curves[0]

    @property
    def random_final_accuracy(self) -> float:
        return float(self.random.mean()[-1])

    def labels_to_match_random(self, curve: Curve) -> Estimate | None:
        """The share of random's labels ``curve`` needs to reach random's final mean accuracy
        (None when its mean curve never does), and the 80% interval of the paired per-seed shares;
        a seed that never matched counts as 1 (all the labels tried, the least it could need) and
        leaves the interval open above (``high`` NaN). Random itself is the baseline: all of its
        labels by definition (its mean curve may touch its final accuracy sooner, which says
        nothing about labelling at random)."""
        if curve is self.random:
            return Estimate(1.0, 1.0, 1.0)
        spent = self.random.labels[-1]
        mean = labels_to_reach(curve.labels, curve.mean(), self.random_final_accuracy)
        if mean is None:
            return None
        shares = [
            labels_to_reach(curve.labels, np.asarray(mine), theirs[-1])
            for mine, theirs in zip(curve.accuracy, self.random.accuracy, strict=True)
        ]
        # a share is at least the first round's labels and, where every seed matched, at most all of them
        spread = t_interval([spent if s is None else s for s in shares], within=(curve.labels[0], spent))
        high = math.nan if None in shares else spread.high / spent
        return Estimate(mean / spent, spread.low / spent, high)

    def beats_random(self, curve: Curve) -> bool:
        """Its whole interval of labels to match random is below random's labels."""
        share = self.labels_to_match_random(curve)
        return curve is not self.random and share is not None and math.isfinite(share.high) and share.high < 1

    def verdict(self) -> str:
        seeds, spent = len(self.settings.seeds), self.random.labels[-1]
        winners = [c for c in self.curves if self.beats_random(c)]
        accuracy = f"{self.random_final_accuracy:.1%}"  # in percent, as the page beside it
        if not winners:
            return (
                f"No strategy beat random beyond the noise over {counted(seeds, 'seed')} "
                f"(random reached {accuracy} "
                f"holdout accuracy with {spent} labels): label at random."
            )
        best = min(winners, key=lambda c: self.labels_to_match_random(c).estimate)
        share = self.labels_to_match_random(best)
        return (
            f"{best.strategy} reached random's final holdout accuracy ({accuracy} with {spent} labels) "
            f"with {share.estimate:.0%} of its labels ({LEVEL:.0%} interval {share.low:.0%} to "
            f"{share.high:.0%} over {seeds} seeds): label with {best.strategy}."
        )

    @classmethod
    def from_dict(cls, record: dict) -> Simulation:
        """A simulation back from its :meth:`to_dict` record (a stored result): the curves per
        seed are kept in it, so every number and the verdict are computed again, not trusted."""
        settings = record["settings"]
        curves = tuple(
            Curve(
                name,
                tuple(point["labels"] for point in found["rounds"]),
                tuple(tuple(seed) for seed in found["accuracy_by_seed"]),
            )
            for name, found in record["strategies"].items()
        )
        return cls(
            record["dataset"],
            record["backbone"],
            record["image_size"],
            record["holdout_size"],
            Settings(
                tuple(settings["strategies"]),
                settings["start"],
                settings["batch"],
                settings["rounds"],
                tuple(settings["seeds"]),
            ),
            curves,
        )

    def to_dict(self) -> dict:
        def share(curve: Curve) -> dict | None:
            found = self.labels_to_match_random(curve)
            return None if found is None else found.to_dict()

        return {
            "dataset": self.dataset,
            "backbone": self.backbone,
            "image_size": self.image_size,
            "holdout_size": self.holdout_size,
            "settings": self.settings.to_dict(),
            "level": LEVEL,
            "strategies": {
                c.strategy: {"rounds": [p.to_dict() for p in c.rounds()], "accuracy_by_seed": c.accuracy}
                for c in self.curves
            },
            "random_final_accuracy": json_float(self.random_final_accuracy),
            "random_labels": self.random.labels[-1],
            "labels_to_match_random": {c.strategy: share(c) for c in self.curves},
            "verdict": self.verdict(),
        }


class Oracle:
    """The labeller: every label of the dataset, handed out for the holdout and validation sets
    (known before any round) and, for pool images, only when asked, each request recorded in
    ``revealed``. The simulation reads labels through it alone."""

    def __init__(self, labels: np.ndarray, splits: Splits) -> None:
        self._labels = np.asarray(labels)
        self._pool = np.zeros(len(labels), dtype=bool)
        self._pool[np.concatenate(splits.pools)] = True
        self.revealed: list[np.ndarray] = []

    def known(self, indices: np.ndarray) -> np.ndarray:
        """Labels of holdout or validation images.

        Raises:
            ValueError: a pool image among them (its label is hidden until revealed).
        """
        if self._pool[indices].any():
            raise ValueError("a pool image's label is hidden until it is revealed")
        return self._labels[indices]

    def reveal(self, indices: np.ndarray) -> np.ndarray:
        """Labels of pool images picked in a round (or drawn for the start)."""
        self.revealed.append(np.array(indices))
        return self._labels[indices]


@dataclass(frozen=True)
class Problem:
    """What every round reads: all images' features, the splits, the classes, and the labeller."""

    features: np.ndarray
    splits: Splits
    classes: tuple[str, ...]
    oracle: Oracle


class Head:
    """The runs' head solver on cached features (:func:`core.engine.head_solver.fit_convex_head`),
    refitted after every round on the labels revealed so far; labels not revealed are -1 in its
    label array, so it cannot read them either."""

    def __init__(self, problem: Problem, epochs: int, lr: float) -> None:
        import torch

        from core.engine.head_solver import Whitening

        self.problem, self.epochs, self.lr = problem, epochs, lr
        self.inputs = torch.from_numpy(np.array(problem.features, dtype=np.float32))  # a writable copy
        self.whitening = Whitening.of_pool(problem.features, np.concatenate(problem.splits.pools))
        splits = problem.splits
        self.holdout_labels = problem.oracle.known(splits.holdout)
        self.visible = np.full(len(problem.features), -1, dtype=np.int64)
        self.visible[splits.val] = problem.oracle.known(splits.val)

    def fit(self, rows: np.ndarray, labels: np.ndarray):
        """A head fitted on ``rows`` with their revealed ``labels``: an ``nn.Linear``."""
        import torch
        from torch import nn

        from core.engine.head_solver import fit_convex_head

        visible = self.visible.copy()
        visible[rows] = labels
        torch.manual_seed(0)
        head = nn.Linear(self.inputs.shape[1], len(self.problem.classes))
        with tempfile.TemporaryDirectory(prefix="hmd-simulate-") as folder, single_thread():
            run = RunFolder(Path(folder))
            fit_convex_head(
                head,
                self.inputs,
                torch.from_numpy(visible),
                np.sort(rows),
                self.problem.splits.val,
                self.whitening,
                self.lr,
                self.epochs,
                run,
                Path(folder) / "cancel",
            )
        return head

    def probs(self, head, rows: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return torch.softmax(head(self.inputs[torch.from_numpy(rows)]), 1).numpy().astype(np.float64)

    def accuracy(self, head) -> float:
        predicted = self.probs(head, self.problem.splits.holdout).argmax(axis=1)
        return float((predicted == self.holdout_labels).mean())


def _round_seed(seed: int, round_index: int) -> int:
    return int(np.random.default_rng([seed, round_index]).integers(2**31 - 1))


def _replay(
    head: Head, strategy: str, start: Start, settings: Settings, say: Callable[[str], None]
) -> list[float]:
    """One strategy's rounds from the seed's start: holdout accuracy at the start and after each."""
    problem = head.problem
    pool = np.sort(np.concatenate(problem.splits.pools))
    rows, labels, fitted = start.rows, start.labels, start.head
    accuracies = [start.accuracy]
    size = settings.batch * len(problem.classes)
    for round_index in range(settings.rounds):
        unlabelled = np.setdiff1d(pool, rows)
        candidates = Candidates(
            problem.features[unlabelled],
            head.probs(fitted, unlabelled),
            problem.features[rows],
            problem.classes,
        )
        picks = select(strategy, candidates, size, _round_seed(start.seed, round_index))
        picked = unlabelled[[p.index for p in picks]]
        rows, labels = np.concatenate([rows, picked]), np.concatenate([labels, problem.oracle.reveal(picked)])
        fitted = head.fit(rows, labels)
        accuracies.append(head.accuracy(fitted))
        say(f"{strategy}, seed {start.seed}, round {round_index + 1}/{settings.rounds}: {accuracies[-1]:.3f}")
    return accuracies


@dataclass(frozen=True)
class Start:
    """A seed's start, shared by every strategy: the rows drawn, their labels, the head on them."""

    seed: int
    rows: np.ndarray
    labels: np.ndarray
    head: object  # the fitted nn.Linear
    accuracy: float


def _start(head: Head, settings: Settings, seed: int) -> Start:
    """``start`` labels per class drawn with the seed, as the runs' ``N/class`` slice draws them."""
    problem = head.problem
    rows = problem.splits.slice_indices(SliceSpec(per_class=settings.start), seed, problem.classes)
    labels = problem.oracle.reveal(rows)
    fitted = head.fit(rows, labels)
    return Start(seed, rows, labels, fitted, head.accuracy(fitted))


def replay(
    problem: Problem,
    settings: Settings,
    epochs: int,
    lr: float,
    say: Callable[[str], None] = lambda message: None,
) -> tuple[Curve, ...]:
    """Every strategy's curve over every seed (``settings`` already checked), random first."""
    head = Head(problem, epochs, lr)
    by_strategy: dict[str, list[tuple[float, ...]]] = {name: [] for name in settings.strategies}
    for seed in settings.seeds:
        start = _start(head, settings, seed)
        for name in settings.strategies:
            by_strategy[name].append(tuple(_replay(head, name, start, settings, say)))
    k = len(problem.classes)
    labels = tuple(k * (settings.start + r * settings.batch) for r in range(settings.rounds + 1))
    return tuple(Curve(name, labels, tuple(runs)) for name, runs in by_strategy.items())


def simulate(
    data: str | Path,
    cache_dir: Path,
    settings: Settings,
    backbone: str = ORIGINAL_BACKBONE,
    image_size: int | None = None,
    split: tuple[float, float, int] = (0.1, 0.1, 0),
    say: Callable[[str], None] = lambda message: None,
) -> Simulation:
    """The backtest of ``settings`` on a labelled dataset, on the runs' cached frozen features of
    ``backbone`` at ``image_size`` (default: the backbone's for the images) and their splits.

    Raises:
        UserError: bad settings, a dataset that cannot be scanned or split, a backbone without
            pretrained weights, or a pool too small for the rounds.
    """

    config = RunConfig(
        data=str(data),
        backbone=backbone,
        mode="frozen",
        slice="1/class",
        image_size=image_size,
        holdout=split[0],
        val=split[1],
        split_seed=split[2],
    )
    prepared = prepare(config, cache_dir)
    dataset, splits = prepared.dataset, prepared.splits
    settings = settings.checked([len(pool) for pool in splits.pools])
    features = run_inputs(prepared.config, dataset, cache_dir).array
    problem = Problem(features, splits, dataset.classes, Oracle(dataset.labels, splits))
    curves = replay(problem, settings, prepared.config.epochs, prepared.config.lr, say)
    resolved = prepared.config
    return Simulation(
        str(dataset.root), resolved.backbone, resolved.image_size, len(splits.holdout), settings, curves
    )
