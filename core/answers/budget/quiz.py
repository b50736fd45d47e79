"""The article's quiz on the user's data: accuracy at half and a twentieth of the pool, and at 3
and 1 images per class."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.answers.budget.points import curve_points
from core.answers.budget.selection import Selection
from core.base.intervals import Estimate, wilson

QUIZ_SHARES = (0.5, 0.05)  # the article asked about 50% and 5% of the data, then 3 and 1 per class
QUIZ_COUNTS = (3, 1)


@dataclass(frozen=True)
class QuizAnswer:
    """One question of the quiz and its answer: means over the slice's runs, each with the 95%
    Wilson interval of the holdout it was measured on (a room should see how sure the number is)."""

    slice: str
    images_per_class: float
    share: float  # of the training pool
    accuracy: Estimate  # the top class is right
    confident: Estimate  # the article's threshold accuracy: right and P(true) > 0.8
    runs: int


def quiz(selection: Selection) -> list[QuizAnswer]:
    """The article's quiz on this data: 50% and 5% of the pool, 3 and 1 images per class (or the
    measured slices nearest to them, each asked once)."""
    points = curve_points(selection)
    pool = max(p.images_per_class for p in points)
    wanted = [pool * share for share in QUIZ_SHARES] + list(QUIZ_COUNTS)
    chosen = []
    for n in wanted:
        nearest = min(points, key=lambda p: abs(math.log(p.images_per_class / n)))
        if nearest not in chosen:
            chosen.append(nearest)
    held = selection.n_holdout
    answers = []
    for p in chosen:
        confident = np.mean(
            [s.holdout.at(0.8).threshold_accuracy for s in selection.summaries if s.config.slice == p.slice]
        )
        answers.append(
            QuizAnswer(
                p.slice,
                p.images_per_class,
                p.images_per_class / pool,
                wilson(p.accuracy * held, held),
                wilson(float(confident) * held, held),
                p.runs,
            )
        )
    return answers
