"""Learning-curve extrapolation: how many labelled images per class reach a holdout accuracy?

Pure numpy + scipy, no IO. Measured runs (images per class, holdout accuracy) are averaged per image
count into points, each weighted by the inverse variance of its mean (Figueroa et al. 2012). Seven
curve families (``families.py``) are fitted by bounded weighted least squares: five that grow as
power laws or arctan-like curves, and two saturating four-parameter forms (MMF and an exponential
approach to a ceiling) that bend into a plateau. Since any one family alone misjudged the data
needed badly (Mahmood et al. 2022), every answer pools them all.

Weights and calibration (``calibration.py``): inner backtests fit every family on the smaller
counts and predict the larger ones; a family counts by how well it did, and the misses, per unit
of log extrapolation, widen every answer past the largest count fitted. A curve whose shape is
wrong then makes the answer less confident instead of leaving it unchanged.

Intervals: a bootstrap resamples runs with replacement within each image count, refits every
family starting from its fit to the original data, and pools the answers of all families x
replicates by family weight; the interval is the weighted (1-level)/2 .. (1+level)/2 quantile of
that pool, widened by the calibration; the point is the power law's fit to the original data
(the weighted median over families where it cannot be fitted: ``calibration.central``).

When the curve is too short, flat, falling or noisy, the answer is one sentence saying so, never an
invented number.

Modules: ``families`` (the curves, evaluating and inverting them), ``fitting`` (points, fits and the
refusals), ``calibration`` (inner backtests: weights and interval widening), ``answers`` (bootstrap,
``accuracy_at``, ``images_needed``, ``backtest``) and ``allocation`` (sharing a label budget among
classes).
"""

from core.answers.curves.allocation import Allocation, allocate
from core.answers.curves.answers import (
    RELIABLE_MULTIPLE,
    Answer,
    Backtest,
    BacktestRow,
    Ensemble,
    accuracy_at,
    answer_at,
    answer_needed,
    backtest,
    band,
    fit,
    images_needed,
    reached_past,
)
from core.answers.curves.calibration import Calibration
from core.answers.curves.families import FAMILIES, Family
from core.answers.curves.fitting import Fit, Observation, Point, check_extrapolable, curve_points, fit_all

__all__ = [
    "FAMILIES",
    "RELIABLE_MULTIPLE",
    "Allocation",
    "Answer",
    "Calibration",
    "Backtest",
    "BacktestRow",
    "Ensemble",
    "Family",
    "Fit",
    "Observation",
    "Point",
    "accuracy_at",
    "answer_at",
    "answer_needed",
    "band",
    "fit",
    "allocate",
    "backtest",
    "check_extrapolable",
    "curve_points",
    "fit_all",
    "images_needed",
    "reached_past",
]
