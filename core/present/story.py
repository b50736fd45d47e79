"""The story of one experiment on one dataset, told for a room in six steps (the Present page).

Every number comes from the function the other pages and the report use for it: the curve and
the answer from :mod:`core.answers.budget`, the share the model decides alone from
:func:`core.answers.trust.run_threshold`, the Grad-CAM examples from the run
:func:`core.answers.cam.showcase_run` picks (only maps already drawn: telling the story writes
nothing), and the next round from :func:`core.answers.rounds.plan`. A step whose numbers cannot
be had carries one plain line saying why instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from core.answers import budget, rounds
from core.answers.calibration import against, short_of
from core.answers.cam import gallery, overlay_path, showcase_run
from core.answers.trust import run_threshold
from core.base.errors import UserError
from core.base.intervals import Estimate
from core.present import figures
from core.present.story_words import answer_sentence, backtest_words, curve_caption, opening, room
from core.store import runs
from core.store.config import DEFAULT_SPLIT, Split

STEPS = (
    "The question",
    "What we measured",
    "The answer",
    "Who decides",
    "Where the model looks",
    "What to label next",
)
NOT_MEASURED = (
    "No measured learning curve on {name} yet: train a learning curve first (the Learning curve page)."
)


@dataclass(frozen=True)
class Handover:
    """At the target accuracy, what the best model decides alone and what goes to a person."""

    images_per_class: float
    n_holdout: int
    threshold: float | None = None
    alone: Estimate | None = None
    person: Estimate | None = None
    accuracy: Estimate | None = None
    reason: str | None = None

    def words(self, target: float) -> str:
        if self.reason or self.alone is None or self.accuracy is None or self.person is None:
            return f"At {target:.0%} accuracy, no share can be left to the model alone yet: {self.reason}."
        right = against(self.accuracy.estimate, target)
        return (
            f"Asked to be right {target:.0%} of the time on what it decides alone, the model trained on the "
            f"most labels ({self.images_per_class:,.0f} images per class) decides alone when it is at least "
            f"{self.threshold:.0%} sure: {self.alone.estimate:.0%} of images, right on "
            f"{right} of them{short_of(self.accuracy, target)}. A person checks the "
            f"other {self.person.estimate:.0%}. Measured on {self.n_holdout:,} images it never saw."
        )


@dataclass(frozen=True)
class CamExample:
    """An image of the best model's holdout: its Grad-CAM overlay where one is drawn, else the
    image itself (``drawn`` False: a room still sees the mistakes, not a placeholder)."""

    overlay: Path | np.ndarray
    right: bool
    caption: str
    drawn: bool = True


@dataclass(frozen=True)
class NextRound:
    """The first round of the plan: how many labels it adds and where it leaves the accuracy."""

    now_per_class: int
    after_per_class: int
    added: int  # all classes together
    accuracy: Estimate
    chance: float  # that the target is reached after it
    rounds: int  # in the plan, until the target is likely
    reached: bool  # whether the plan's last round makes the target likely
    last_chance: float  # after the plan's last round
    level: float

    def words(self, target: float) -> tuple[str, ...]:
        a = self.accuracy
        more = self.after_per_class - self.now_per_class
        later = (
            f"After {self.rounds} rounds like this, each doubling the labels, the chance of reaching "
            f"{target:.0%} is {self.last_chance:.0%}."
        )
        if not self.reached:
            later += " Beyond that the curve cannot be trusted: measure again after this round."
        return (
            f"Label {self.added:,} more images: {more:,} more per class, "
            f"{self.after_per_class:,} per class in all.",
            f"Expected accuracy then: {a.estimate:.0%} ({self.level:.0%} interval {a.low:.0%} to "
            f"{a.high:.0%}); chance of reaching {target:.0%}: {self.chance:.0%}.",
            later if self.rounds > 1 else "This round is the plan: measure again after it.",
            "Which images: the Next batch page picks them from a folder nobody has labelled yet.",
        )


@dataclass(frozen=True)
class Story:
    """What each step shows; a ``str`` in place of a part is the plain line saying why it is missing."""

    dataset: str
    experiment: str  # its label, as links name it
    experiment_words: str
    target: float
    opening: tuple[str, ...]
    curve: go.Figure
    curve_caption: str
    answer: tuple[str, ...]  # the sentence with the interval, then the backtest in words
    answered: bool  # the answer stands (an estimate no measurement contradicts): shown as good news
    caveats: tuple[str, ...]
    handover: Handover | str
    cams: tuple[tuple[CamExample, ...], float] | str  # the examples and the run's images per class
    next_round: NextRound | str


def tell(
    cache_dir: Path,
    data: str | Path,
    experiment: str | None = None,
    target: float | None = None,
    split: Split = DEFAULT_SPLIT,
) -> Story:
    """The story of ``experiment`` (its label or part of one; by default the one with the most
    slices) on ``data``, for ``target`` (by default the Learning curve page's suggestion).

    Raises:
        UserError: no runs for the dataset, the experiment names none, or too few slices.
    """
    selection = budget.select(cache_dir, data, experiment, *split)
    analysis = budget.analyse(selection)
    report = budget.report(analysis, analysis.suggested_target() if target is None else target)
    best = showcase_run(selection.summaries)
    return Story(
        selection.dataset.root.name,
        selection.experiment,
        selection.plain(selection.experiment),
        report.target,
        opening(selection, report),
        room(
            figures.learning_curve(
                report.points,
                report.band,
                report.target,
                report.standing,
                report.level,
                report.reliable_up_to,
            ),
            report.target,
        ),
        curve_caption(report),
        (answer_sentence(report), backtest_words(report.backtest, report.level)),
        report.standing is not None,
        tuple(budget.caveats(report)),
        _guarded(lambda: handover(cache_dir, best, report.target)),
        _guarded(lambda: cam_examples(cache_dir, best)),
        _guarded(lambda: next_round(analysis, report.target, report.plateau)),
    )


def _guarded(part):
    try:
        return part()
    except (UserError, OSError, ValueError) as error:
        return f"Not available: {error}"


def handover(cache_dir: Path, best, target: float) -> Handover:
    """What the experiment's best model (:func:`showcase_run`) decides alone at ``target``
    accuracy, by the Trust page's threshold (chosen on validation, measured on the holdout)."""
    plan = run_threshold(cache_dir, best.run_id, target)
    size = budget.images_per_class(best)
    if plan.threshold is None or plan.automated_share is None:
        return Handover(size, best.n_holdout, reason=plan.reason)
    return Handover(
        size, best.n_holdout, plan.threshold, plan.automated_share, plan.human_share, plan.kept_accuracy
    )


def cam_examples(cache_dir: Path, best, wanted: int = 3, method: str = "gradcam") -> tuple:
    """Up to two mistakes and a right answer of the best model whose Grad-CAM is already drawn
    (for the class it said), with the run's images per class; nothing is drawn here, so where
    none is drawn yet, the first two mistakes and a right answer themselves."""
    classes = best.classes
    wrong_rows = gallery(cache_dir, best.run_id, "misclassified")
    right_rows = gallery(cache_dir, best.run_id, "correct")

    def drawn(rows) -> Iterable[tuple]:
        for row in rows.itertuples():
            path = overlay_path(cache_dir, best.run_id, method, int(row.image_index), classes.index(row.pred))
            if path.exists():
                yield row, path

    def wrong_words(row) -> str:
        return f"Wrong: a {row.true} it called {row.pred} ({row.p_max:.0%} sure)"

    def right_words(row) -> str:
        return f"Right: a {row.true} ({row.p_max:.0%} sure)"

    wrong = [CamExample(path, False, wrong_words(row)) for row, path in drawn(wrong_rows.head(200))][:2]
    right = [CamExample(path, True, right_words(row)) for row, path in drawn(right_rows.head(200))]
    examples = (*wrong, *right[: wanted - len(wrong)])
    if not examples:
        pixels = runs.load(cache_dir, best.run_id).images()
        examples = tuple(
            CamExample(pixels[int(row.image_index)], is_right, words(row), drawn=False)
            for rows, is_right, words in (
                (wrong_rows.head(2), False, wrong_words),
                (right_rows.head(wanted - len(wrong_rows.head(2))), True, right_words),
            )
            for row in rows.itertuples()
        )
    return examples, budget.images_per_class(best)


def next_round(
    analysis: budget.Analysis, target: float, plateau: budget.Plateau | None = None
) -> NextRound | str:
    """The first round of :func:`rounds.plan` (each round doubling the labels per class); none
    where the measured curve has stopped rising (``plateau``): a room told on one step that more
    labels are unlikely to help must not be told on the next to label hundreds more."""
    if reached := rounds.already_reached(analysis, target):
        return reached
    if plateau:
        return (
            f"No round of labels suggested: the measured accuracy has not moved beyond noise since about "
            f"{plateau.since:,.0f} images per class. Try fine-tuning, a larger backbone or larger images "
            "first; the Next batch page still plans rounds for anyone who labels anyway."
        )
    plan = rounds.plan(analysis, target)
    if plan.reason or not plan.rounds:
        return plan.reason or "No plan yet: no round to suggest."
    first, last = plan.rounds[0], plan.rounds[-1]
    return NextRound(
        plan.assumptions.start_per_class,
        first.cumulative_per_class,
        plan.added()[0],
        first.accuracy,
        first.p_reached,
        len(plan.rounds),
        last.p_reached >= rounds.ENOUGH,
        last.p_reached,
        analysis.level,
    )


def find_dataset(given: str, known: Iterable[str]) -> str | None:
    """The dataset a link names: a folder path, or the folder name of one of ``known``."""
    if Path(given).expanduser().is_dir():
        return str(Path(given).expanduser())
    named = [path for path in known if Path(path).name == given]
    return named[0] if named else None
