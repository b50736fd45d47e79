"""A gallery of real learning curves: on each dataset, fit on the slices up to 10% of the pool,
predict every larger measured slice, and score the answer's 80% interval against the same answer
with the weighted median over families as its point, the answer as it was before the gallery
(five families, equal weights, bootstrap only), a single power law (bootstrap over runs, no
calibration) and a Gaussian process on log n (scikit-learn's
``GaussianProcessRegressor``, as in Harvey et al. 2023), side by side.

``python -m bench.gallery --cache DIR DATA [DATA ...]`` reads the learning curves already in
the cache (``python -m core sweep --preset curve --data DATA`` trains them), with ``DATA`` a
dataset folder, optionally ``folder#PART`` for the experiment whose label holds ``PART`` (the
one ``budget`` opens on otherwise: most slices, then the usual training). Writes
``bench/results/gallery.json`` and ``.md``, the former with every run's holdout accuracy:
``python -m bench.gallery --stored`` scores those runs again (after a change to the curves, in
about 30 s, with no training).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.answers import budget, curves
from core.answers.curves.fitting import curve_points

RESULTS = Path(__file__).parent / "results"
LEVEL = 0.8
SHARE = 0.1  # fitted on slices up to this share of the pool
Z = 1.2815515655446004  # the normal's 90% quantile: a central 80% interval is mean +- Z sd


@dataclass(frozen=True)
class Prediction:
    """One held-out slice as one method saw it."""

    dataset: str
    method: str
    n: float
    ratio: float  # n over the largest fitted count
    measured: float
    predicted: float
    low: float
    high: float

    @property
    def inside(self) -> bool:
        return self.low <= self.measured <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


def ours(observations, fit_up_to: float, n_holdout: int) -> list[tuple[float, float, float, float]]:
    return _rows(curves.backtest(observations, fit_up_to, LEVEL, n_holdout=n_holdout))


def median_point(observations, fit_up_to: float, n_holdout: int) -> list[tuple[float, float, float, float]]:
    """Ours with the weighted median over families as the point (the answer before the power law
    anchored it): what the anchor changed, on the same calibration."""
    return _rows(curves.backtest(observations, fit_up_to, LEVEL, n_holdout=n_holdout, anchor=None))


def power_law(observations, fit_up_to: float, n_holdout: int) -> list[tuple[float, float, float, float]]:
    found = curves.backtest(
        observations, fit_up_to, LEVEL, n_holdout=n_holdout, families=("power_law",), calibrated=False
    )
    return _rows(found)


PREVIOUS = ("power_law", "piecewise_power_law", "arctan", "logarithmic", "algebraic_root")


def previous(observations, fit_up_to: float, n_holdout: int) -> list[tuple[float, float, float, float]]:
    """The answer before this gallery: five families, equal weights, bootstrap intervals only."""
    found = curves.backtest(
        observations, fit_up_to, LEVEL, n_holdout=n_holdout, families=PREVIOUS, calibrated=False
    )
    return _rows(found)


def _rows(found: curves.Backtest) -> list[tuple[float, float, float, float]]:
    if found.reason:
        raise ValueError(found.reason)
    return [(row.n, row.predicted, row.low, row.high) for row in found.rows]


def gaussian_process(
    observations, fit_up_to: float, n_holdout: int
) -> list[tuple[float, float, float, float]]:
    """A GP on log n through the fitted runs' means (each with its variance as noise), an RBF
    kernel with a learnt white-noise term, targets normalised."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    points = curve_points(observations, n_holdout)
    fitted = [p for p in points if p.n <= fit_up_to]
    x = np.log([[p.n] for p in fitted])
    y = np.array([p.mean for p in fitted])
    kernel = ConstantKernel(1.0) * RBF(length_scale=1.0) + WhiteKernel(1e-4)
    model = GaussianProcessRegressor(
        kernel,
        alpha=np.array([p.variance for p in fitted]),
        normalize_y=True,
        n_restarts_optimizer=5,
        random_state=0,
    )
    model.fit(x, y)
    held = [p.n for p in points if p.n > fit_up_to]
    mean, sd = model.predict(np.log([[n] for n in held]), return_std=True)
    return [(n, float(m), float(m - Z * s), float(m + Z * s)) for n, m, s in zip(held, mean, sd, strict=True)]


METHODS = {
    "ours": ours,
    "ours, median point": median_point,
    "previous answer": previous,
    "power law": power_law,
    "Gaussian process": gaussian_process,
}


def dataset_about(cache: Path, data: str) -> dict:
    """What the gallery keeps of one dataset's learning curve in ``cache``: its size, the slices
    fitted, and every run's observation, which is all that scoring it needs."""
    folder, _, part = data.partition("#")
    selection = budget.select(cache, folder, part or None)  # by default the usual training
    observations = budget.observations(selection)
    points = budget.curve_points(selection)
    pool = points[-1].images_per_class
    fit_up_to = max(p.images_per_class for p in points if p.images_per_class <= SHARE * pool + 1e-9)
    by_slice: dict[str, list[float]] = {}
    for summary in selection.summaries:
        by_slice.setdefault(summary.config.slice, []).append(summary.accuracy)
    return {
        "dataset": Path(folder).name + (f" ({part})" if part else ""),
        "runs_at_largest_slices": {
            p.slice: sorted(by_slice[p.slice]) for p in points[-4:-1] if len(by_slice[p.slice]) > 1
        },
        "classes": len(selection.classes),
        "pool_per_class": pool,
        "holdout": selection.n_holdout,
        "fit_up_to": fit_up_to,
        "experiment": selection.experiment,
        "held_out": len([p for p in points if p.images_per_class > fit_up_to]),
        # every run's (images per class, holdout accuracy, sample seed, seed): a change to the
        # curves is scored on the gallery again without retraining (``--stored``)
        "observations": [[o.n, o.accuracy, o.sample_seed, o.seed] for o in observations],
    }


def dataset_predictions(about: dict) -> list[Prediction]:
    """Every method's prediction of every held-out slice of one dataset."""
    observations = [curves.Observation(*row) for row in about["observations"]]
    measured = {p.n: p.mean for p in curve_points(observations)}
    fit_up_to = about["fit_up_to"]
    return [
        Prediction(about["dataset"], method, n, n / fit_up_to, measured[n], predicted, low, high)
        for method, predict in METHODS.items()
        for n, predicted, low, high in predict(observations, fit_up_to, about["holdout"])
    ]


def summary(predictions: list[Prediction], method: str) -> dict:
    mine = [p for p in predictions if p.method == method]
    by_dataset = {}
    for name in dict.fromkeys(p.dataset for p in mine):
        rows = [p for p in mine if p.dataset == name]
        last = max(rows, key=lambda p: p.n)
        by_dataset[name] = {
            "error_at_largest": 100 * abs(last.predicted - last.measured),
            "inside": sum(p.inside for p in rows),
            "rows": len(rows),
            "mean_width": 100 * float(np.mean([p.width for p in rows])),
        }
    return {
        "coverage": float(np.mean([p.inside for p in mine])),
        "mean_width": 100 * float(np.mean([p.width for p in mine])),
        "by_dataset": by_dataset,
        "coverage_by_reach": _by_reach(mine),
    }


REACH_BINS = ((1, 4), (4, 10), (10, 30), (30, math.inf))


def _by_reach(rows: list[Prediction]) -> dict[str, str]:
    """Coverage by how far the slice lies beyond the fitted ones: where it breaks."""
    found = {}
    for low, high in REACH_BINS:
        inside = [p.inside for p in rows if low < p.ratio <= high]
        if inside:
            found[f"{low}-{high}x"] = f"{sum(inside)} of {len(inside)}"
    return found


def narrower_where_both_cover(predictions: list[Prediction]) -> dict:
    """Our interval's width against the GP's on the slices both cover."""
    key = {(p.dataset, p.n): p for p in predictions if p.method == "Gaussian process"}
    pairs = [
        (p, key[(p.dataset, p.n)]) for p in predictions if p.method == "ours" and (p.dataset, p.n) in key
    ]
    both = [(a, b) for a, b in pairs if a.inside and b.inside]
    return {
        "slices": len(both),
        "ours_mean_width": 100 * float(np.mean([a.width for a, _ in both])) if both else None,
        "gp_mean_width": 100 * float(np.mean([b.width for _, b in both])) if both else None,
        "ours_narrower": sum(a.width < b.width for a, b in both),
    }


def _by_dataset(result: dict) -> list[str]:
    """The table the README shows: per dataset, each method's error at the largest slice, how
    many held-out slices fell inside its interval, and the interval's mean width (points)."""
    lines = [
        f"| dataset | fitted up to | {' | '.join(f'{m}: error, inside, width' for m in METHODS)} |",
        f"|---|---|{'---|' * len(METHODS)}",
    ]
    for about in result["datasets"]:
        cells = []
        for method in METHODS:
            row = result["methods"][method]["by_dataset"][about["dataset"]]
            cells.append(
                f"{row['error_at_largest']:.2f}, {row['inside']} of {row['rows']}, {row['mean_width']:.1f}"
            )
        lines.append(f"| {about['dataset']} | {about['fit_up_to']:g}/class | {' | '.join(cells)} |")
    return lines


def markdown(result: dict) -> str:
    lines = [
        f"`{result['command']}` ({result['date']}, {result['seconds']:.0f} s). Fitted on the slices up to "
        f"10% of each pool; every larger measured slice predicted. Error in accuracy points at the "
        f"largest slice; coverage of the stated {LEVEL:.0%} interval; mean interval width in points.",
        "",
        "| dataset | classes | pool/class | fitted up to | method | error at largest | inside | width |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for about in result["datasets"]:
        for method in METHODS:
            row = result["methods"][method]["by_dataset"][about["dataset"]]
            lines.append(
                f"| {about['dataset']} | {about['classes']} | {about['pool_per_class']:g} | "
                f"{about['fit_up_to']:g} | {method} | {row['error_at_largest']:.2f} | "
                f"{row['inside']} of {row['rows']} | {row['mean_width']:.1f} |"
            )
    lines += ["", *_by_dataset(result)]
    lines += ["", "| method | coverage (all slices) | mean width | coverage by reach (n / largest fitted) |"]
    lines += ["|---|---|---|---|"]
    for method in METHODS:
        found = result["methods"][method]
        reach = ", ".join(f"{k}: {v}" for k, v in found["coverage_by_reach"].items())
        lines.append(f"| {method} | {found['coverage']:.2f} | {found['mean_width']:.1f} | {reach} |")
    lines += [
        "",
        "| dataset | slice | holdout accuracy of each sample seed | range (points) |",
        "|---|---|---|---|",
    ]
    for about in result["datasets"]:
        for text, values in about["runs_at_largest_slices"].items():
            shown = ", ".join(f"{v:.4f}" for v in values)
            lines.append(
                f"| {about['dataset']} | {text} | {shown} | {100 * (max(values) - min(values)):.2f} |"
            )
    both = result["narrower_where_both_cover"]
    if both["slices"]:
        lines += [
            "",
            f"Where both cover ({both['slices']} slices): ours {both['ours_mean_width']:.1f} points wide "
            f"on average, the Gaussian process {both['gp_mean_width']:.1f}; ours narrower on "
            f"{both['ours_narrower']}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gallery", description=__doc__.split("\n\n")[0])
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--cache", type=Path, help="the cache holding the datasets' learning curves")
    given.add_argument(
        "--stored",
        action="store_true",
        help="score again the runs stored in bench/results/gallery.json (no cache, no training)",
    )
    parser.add_argument(
        "data", nargs="*", help="dataset folders (folder#PART: the experiment whose label holds PART)"
    )
    args = parser.parse_args()
    started = time.time()
    if args.stored:
        stored = json.loads((RESULTS / "gallery.json").read_text())
        datasets, command = stored["datasets"], stored["command"]
    else:
        datasets = [dataset_about(args.cache, data) for data in args.data]
        command = "python -m bench.gallery --cache CACHE " + " ".join(Path(d).name for d in args.data)
    predictions = [found for about in datasets for found in dataset_predictions(about)]
    result = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.time() - started,
        "datasets": datasets,
        "methods": {method: summary(predictions, method) for method in METHODS},
        "narrower_where_both_cover": narrower_where_both_cover(predictions),
        "predictions": [asdict(p) | {"inside": p.inside} for p in predictions],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gallery.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "gallery.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
