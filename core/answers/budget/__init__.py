"""The answer: how many labelled images per class reach a target holdout accuracy, how far to trust
it, and which classes to label next.

It reads cached runs only. The runs of one experiment on one dataset (same images, same holdout)
become a learning curve: holdout accuracy against images per class (``n_train / classes``), one
point per uniform slice (``N/class`` or ``P%``). :mod:`core.answers.curves` fits seven curve
families to it with bootstrap intervals; this package picks the runs (``selection``), shapes the
points (``points``), finds a plateau (``plateau``), runs the backtest and answers a target
(``report``: one report whose ``to_dict()`` is what ``python -m core budget --json`` prints),
shares labels among classes (``classes``), says it all in sentences (``words``, with the
disagreements between curve and measurement in ``contradictions``) and asks the article's quiz
(``quiz``). ``level`` holds the interval level and the reliable reach every answer states.
"""

from core.answers.budget.classes import (
    CheckResult,
    ClassPoint,
    allocate,
    check_plan,
    check_results,
    class_curves,
    paired_gain,
    per_class_counts,
    uneven_classes,
)
from core.answers.budget.contradictions import ceiling_below, measured_above, measured_below
from core.answers.budget.level import LEVEL, RELIABLE_MULTIPLE
from core.answers.budget.plateau import PLATEAU_VAR_FLOOR, Plateau, find_plateau
from core.answers.budget.points import CurvePoint, curve_points, point_lines
from core.answers.budget.quiz import quiz
from core.answers.budget.report import Analysis, BudgetReport, analyse, backtest_lines, family_lines, report
from core.answers.budget.selection import (
    Selection,
    curve_grid,
    images_per_class,
    observations,
    select,
    siblings,
    splits_with_runs,
)
from core.answers.budget.words import (
    NO_GAIN,
    backtest_sentence,
    caveats,
    describe,
    gain_sentence,
    intervals_explained,
    points_stated,
    ratio_words,
    stated,
)

__all__ = [
    "Analysis",
    "BudgetReport",
    "CheckResult",
    "ClassPoint",
    "CurvePoint",
    "LEVEL",
    "NO_GAIN",
    "PLATEAU_VAR_FLOOR",
    "Plateau",
    "RELIABLE_MULTIPLE",
    "Selection",
    "allocate",
    "analyse",
    "backtest_lines",
    "backtest_sentence",
    "caveats",
    "ceiling_below",
    "check_plan",
    "check_results",
    "class_curves",
    "curve_grid",
    "curve_points",
    "describe",
    "family_lines",
    "find_plateau",
    "gain_sentence",
    "images_per_class",
    "intervals_explained",
    "measured_above",
    "measured_below",
    "observations",
    "paired_gain",
    "per_class_counts",
    "point_lines",
    "points_stated",
    "quiz",
    "ratio_words",
    "report",
    "select",
    "siblings",
    "splits_with_runs",
    "stated",
    "uneven_classes",
]
