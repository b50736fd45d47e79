"""8. The answer and the trust table on the bundled dataset, on a cache of their own (no other
suite's runs in the curve): the learning-curve preset at 96 px, then the budget backtest fitted
on slices up to 40 images per class (10% of the pool) and at its default (a quarter of the
largest slice), each predicting every larger measured slice; and calibration and the share of
images a model decides alone at 95%, against images per class (what the README's trust table
shows, written to ``bench/results/<mode>-trust.md``)."""

from __future__ import annotations

from pathlib import Path

from bench.grid import BASE
from bench.measure import Row, timed
from core.answers import budget, trust
from core.base.paths import DEFAULT_DATA
from core.engine.pipeline import sweep
from core.store.tables import experiment_label

FIT_UP_TO = 40.0
TRUST_TARGET = 0.95


def run(cache: Path) -> tuple[list[Row], str]:
    """The rows, and the trust table as markdown."""
    configs = budget.curve_grid(BASE, cache)
    slices = list(dict.fromkeys(c.slice for c in configs))
    results, seconds = timed(lambda: sweep(BASE, slices, [1], cache, sample_seeds=[1, 2, 3]))
    selection = budget.select(cache, DEFAULT_DATA, experiment_label(results[0].summary.config))
    trained = f"{len(slices)} slices x 3 sample seeds ({seconds:.0f} s to train)"
    analysis, fit_seconds = timed(lambda: budget.analyse(selection, FIT_UP_TO))
    rows = _backtest_rows(analysis, f"fit up to {FIT_UP_TO:g}/class", trained, target=2.0)
    rows += _backtest_rows(budget.analyse(selection), "default fit", trained)
    rows.append(
        Row(
            "budget",
            "fit, inner backtests and backtest, 7 families x 100 bootstrap replicates, twice",
            fit_seconds,
            None,
            "s",
            better="lower",
        )
    )
    return rows, trust_table(trust.by_size(selection, TRUST_TARGET, n_boot=100), len(selection.summaries))


def _backtest_rows(
    analysis: budget.Analysis, fitted: str, trained: str, target: float | None = None
) -> list[Row]:
    backtest = analysis.backtest
    last = backtest.rows[-1]
    on = ", ".join(p.slice for p in analysis.points if p.images_per_class <= backtest.fit_up_to)
    return [
        Row(
            "budget",
            f"backtest error at 100% ({fitted})",
            100 * abs(last.predicted - last.measured),
            None,
            "accuracy points",
            better="lower",
            target=target,
            note=f"measured {last.measured:.3f}, predicted {last.predicted:.3f} "
            f"(80% interval {last.low:.3f} to {last.high:.3f})",
        ),
        Row(
            "budget",
            f"backtest mean error, all held-out slices ({fitted})",
            100 * backtest.mean_abs_error,
            None,
            "accuracy points",
            better="lower",
            note=f"{trained}; fitted on {on}; predicted {len(backtest.rows)} larger slices",
        ),
        Row(
            "budget",
            f"held-out slices inside the stated 80% interval ({fitted})",
            backtest.coverage,
            None,
            "share",
            target=0.8,
            note=f"{backtest.inside} of {len(backtest.rows)}",
        ),
    ]


def trust_table(points: list[trust.SizePoint], runs: int) -> str:
    """The README's trust table: one column per slice, means over its runs."""
    chosen = [p for p in points if p.images_per_class in (1, 3, 8, 20, 50, 130, 400)] or points

    def cells(values) -> str:
        return " | ".join(values)

    def share(value: float | None) -> str:
        return "none" if value is None else f"{value:.0%}"

    def accuracy(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    lines = [
        f"Frozen EfficientNet-Lite0 at 96 px, the {runs} runs of the learning-curve preset, means over "
        f"each slice's runs; thresholds from validation for {TRUST_TARGET:.0%}.",
        "",
        f"| images per class | {cells(f'{p.images_per_class:g}' for p in chosen)} |",
        f"|---|{'---|' * len(chosen)}",
        f"| ECE as trained | {cells(f'{p.ece:.3f}' for p in chosen)} |",
        f"| ECE after temperature scaling | {cells(f'{p.ece_scaled:.3f}' for p in chosen)} |",
        f"| share the model decides alone at {TRUST_TARGET:.0%} (threshold from validation) | "
        f"{cells(share(p.automated_share) for p in chosen)} |",
        f"| accuracy of those, on the holdout | {cells(accuracy(p.kept_accuracy) for p in chosen)} |",
    ]
    return "\n".join(lines) + "\n"
