"""Learning-curve extrapolation: how many labelled images per class reach a holdout accuracy?

Pure numpy + scipy, no IO. Measured runs (images per class, holdout accuracy) are averaged per image
count into points, each weighted by the inverse variance of its mean (Figueroa et al. 2012). Five
curve families (``families.py``) are fitted by bounded weighted least squares; since any one family
alone misjudged the data needed badly (Mahmood et al. 2022, LOC 2022), every answer pools them all.

Intervals: a bootstrap resamples runs with replacement within each image count (every measured count
stays; what varies is the spread over sample and training seeds), refits every family starting from
its fit to the original data, and pools the answers of all families x replicates, the original fits
included. The interval is the (1-level)/2 .. (1+level)/2 empirical quantile of that pool; the point
is the median over families of their fits to the original data. With a single run per count there is
nothing to resample and the interval is only the families' disagreement.

When the curve is too short, flat, falling or noisy, the answer is one sentence saying so, never an
invented number. ``images_needed`` with its defaults (200 replicates, 5 families) on 10 counts x 3 runs
takes about 1.1 s on 2 CPU cores (0.3 s with ``n_boot=40``).

Modules: ``families`` (the curves, evaluating and inverting them), ``fitting`` (points, fits and the
refusals), ``answers`` (bootstrap, ``accuracy_at``, ``images_needed``, ``backtest``) and
``allocation`` (sharing a label budget among classes).
"""

from core.curves.allocation import Allocation, allocate
from core.curves.answers import (
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
)
from core.curves.families import FAMILIES, Family
from core.curves.fitting import Fit, Observation, Point, check_extrapolable, curve_points, fit_all

__all__ = [
    "FAMILIES",
    "Allocation",
    "Answer",
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
]
