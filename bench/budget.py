"""8. The budget answer's backtest on the bundled dataset: fit the learning curve on slices up to
40 images per class (10% of the pool), predict every larger measured slice, and report the error
in accuracy points (at 100% above all) and how often the stated 80% interval held."""

from __future__ import annotations

from pathlib import Path

from bench.grid import BASE
from bench.measure import Row, timed
from core.answers import budget
from core.base.paths import DEFAULT_DATA
from core.engine.pipeline import sweep
from core.store.tables import experiment_label

FIT_UP_TO = 40.0


def run(cache: Path) -> list[Row]:
    configs = budget.curve_grid(BASE, cache)
    slices = list(dict.fromkeys(c.slice for c in configs))
    results, seconds = timed(lambda: sweep(BASE, slices, [1], cache, sample_seeds=[1, 2, 3]))
    selection = budget.select(cache, DEFAULT_DATA, experiment_label(results[0].summary.config))
    analysis, fit_seconds = timed(lambda: budget.analyse(selection, FIT_UP_TO))
    backtest = analysis.backtest
    last = backtest.rows[-1]
    note = (
        f"{len(slices)} slices x 3 sample seeds ({seconds:.0f} s to train); fitted on "
        f"{', '.join(p.slice for p in analysis.points if p.images_per_class <= FIT_UP_TO)}; "
        f"predicted {len(backtest.rows)} larger slices"
    )
    return [
        Row(
            "budget",
            "backtest error at 100% (fit up to 40/class)",
            100 * abs(last.predicted - last.measured),
            None,
            "accuracy points",
            better="lower",
            target=2.0,
            note=f"measured {last.measured:.3f}, predicted {last.predicted:.3f} "
            f"(80% interval {last.low:.3f} to {last.high:.3f})",
        ),
        Row(
            "budget",
            "backtest mean error, all held-out slices",
            100 * backtest.mean_abs_error,
            None,
            "accuracy points",
            better="lower",
            note=note,
        ),
        Row(
            "budget",
            "held-out slices inside the stated 80% interval",
            backtest.coverage,
            None,
            "share",
            target=0.8,
            note=f"{sum(r.inside for r in backtest.rows)} of {len(backtest.rows)}",
        ),
        Row(
            "budget",
            "fit, inner backtests and backtest, 7 families x 100 bootstrap replicates, twice",
            fit_seconds,
            None,
            "s",
            better="lower",
        ),
    ]
