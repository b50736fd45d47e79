"""How many to label this round: the learning-curve answer as a staged plan.

One up-front estimate of the labels a target takes is often wrong by a wide margin; collecting
in rounds and refitting the curve after each misses the target far less often (Mahmood et al.,
CVPR 2022). So the plan commits to the next round only: each round's cumulative labels per
class, the accuracy the curve predicts there (the answer's own calibrated interval) and the
chance of having reached the target by then, read off that same interval. (It was the share of
the bootstrap curves that reach the target, which ignores what the backtest widens the interval
by: a room read "chance 100%" beside "80% interval 80% to 97%" for a target of 87%.) Every input
is stated, so the plan reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

from core.answers import curves
from core.answers.budget import Analysis
from core.base.errors import UserError, check_share
from core.base.intervals import Estimate, wilson

MAX_ROUNDS = 8
ENOUGH = 0.9  # rounds stop once the target is this likely reached


@dataclass(frozen=True)
class Round:
    cumulative_per_class: int
    accuracy: Estimate
    p_reached: float  # the chance the accuracy there reaches the target, by its stated interval
    reliable: bool  # within the reach the gallery checked (10x the largest measured slice)

    def to_dict(self) -> dict:
        return {
            "cumulative_per_class": self.cumulative_per_class,
            "accuracy": self.accuracy.to_dict(),
            "p_reached": self.p_reached,
            "reliable": self.reliable,
        }


@dataclass(frozen=True)
class Assumptions:
    """What the plan rests on, so that anyone can make it again from the same runs."""

    target: float
    level: float
    start_per_class: int  # the largest measured slice
    round_size_per_class: int | None  # None: each round doubles the labels
    classes: int
    rule: str

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "level": self.level,
            "start_per_class": self.start_per_class,
            "round_size_per_class": self.round_size_per_class,
            "labels_per_round": "doubling"
            if self.round_size_per_class is None
            else self.round_size_per_class * self.classes,
            "classes": self.classes,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class RoundPlan:
    rounds: tuple[Round, ...]
    assumptions: Assumptions
    reason: str | None = None  # why there is no plan (no curve to extrapolate)
    # the measured curve has stopped rising: the rounds stand, for anyone who labels anyway, but
    # a page that plans them beside a page that says more labels will not help must say so too
    caveat: str | None = None

    def added(self) -> tuple[int, ...]:
        """The labels each round adds, all classes together: what the round costs."""
        before = [self.assumptions.start_per_class, *(r.cumulative_per_class for r in self.rounds[:-1])]
        return tuple(
            (r.cumulative_per_class - n) * self.assumptions.classes
            for r, n in zip(self.rounds, before, strict=True)
        )

    def to_dict(self) -> dict:
        return {
            "rounds": [r.to_dict() for r in self.rounds],
            "assumptions": self.assumptions.to_dict(),
            "reason": self.reason,
            "caveat": self.caveat,
        }


def p_reached(accuracy: Estimate, target: float, level: float) -> float:
    """The chance that the accuracy reaches ``target``, read off its stated ``level`` interval as
    a split normal (each arm its own spread, the interval's ends at its quantiles): a target
    inside the interval is never "certain", whatever the bootstrap alone would say."""
    z = NormalDist().inv_cdf((1 + level) / 2)
    point = accuracy.estimate
    arm = (accuracy.high - point) if target >= point else (point - accuracy.low)
    if arm <= 0:
        return 1.0 if point >= target else 0.0
    return 1 - NormalDist(point, arm / z).cdf(target)


def already_reached(analysis: Analysis, target: float) -> str | None:
    """The sentence that no round is needed, where the largest slice already measures at or
    above ``target``; else None. A plan that doubled the labels for a target already met read
    "label 240 more, chance 93%" beside "now 83%" for 79%."""
    top, images = analysis.points[-1], analysis.selection.n_holdout
    if top.accuracy < target:
        return None
    measured = wilson(round(top.accuracy * images), images)
    sure = (
        ""
        if measured.low >= target
        else f" The {images:,} holdout images cannot confirm it: a larger holdout would."
    )
    return (
        f"None needed for {target:.0%}: the models trained on {top.images_per_class:,.0f} images per "
        f"class are already right {top.accuracy:.1%} of the time (95% interval {measured.low:.1%} to "
        f"{measured.high:.1%} on {images:,} holdout images). More labels pay only for a higher target.{sure}"
    )


def plan(analysis: Analysis, target: float, round_size: int | None = None) -> RoundPlan:
    """Rounds from the largest measured slice: ``round_size`` more labels per class each, or
    doubling when None, until the target is :data:`ENOUGH` likely or :data:`MAX_ROUNDS` rounds.

    Raises:
        UserError: a target outside (0, 1) or a round size below 1.
    """
    check_share("--target", target)
    if round_size is not None and round_size < 1:
        raise UserError(f"--round-size must be at least 1 image per class, not {round_size}")
    start = round(analysis.points[-1].images_per_class)
    rule = (
        f"{round_size} more labels per class each round"
        if round_size
        else "each round doubles the labels per class"
    ) + (
        f"; rounds stop once the target is {ENOUGH:.0%} likely, after the first round beyond the "
        f"curve's reliable reach, or after {MAX_ROUNDS}"
    )
    assumptions = Assumptions(
        target, analysis.level, start, round_size, len(analysis.selection.classes), rule
    )
    if reached := already_reached(analysis, target):
        return RoundPlan((), assumptions, reached)
    if isinstance(analysis.fitted, str):
        return RoundPlan((), assumptions, f"No plan yet: {analysis.fitted}")
    rounds, n = [], start
    while len(rounds) < MAX_ROUNDS:
        n = n + round_size if round_size else 2 * n
        answer = curves.answer_at(analysis.fitted, n, analysis.level)
        chance = p_reached(answer.estimate, target, analysis.level)
        rounds.append(Round(n, answer.estimate, chance, n <= analysis.reliable_up_to))
        if chance >= ENOUGH or n > analysis.reliable_up_to:
            break
    caveat = (
        f"{analysis.plateau.verdict} The rounds below are for anyone who labels anyway."
        if analysis.plateau
        else None
    )
    return RoundPlan(tuple(rounds), assumptions, caveat=caveat)
