"""The next batch against random on the bundled dataset: the simulation (start 1 per class,
batches of 10 per class, 6 rounds, 3 seeds) with every strategy, each strategy's labels to
reach random's final holdout accuracy as a share of random's labels, and the target: the
default strategy needs at most 0.8 of random's labels.

``python -m bench.nextbatch [--cache DIR] [--data DIR]`` (the cache's frozen features are
computed once if missing). Writes ``bench/results/nextbatch.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

from bench.measure import Row
from core.answers.nextbatch.simulate import LEVEL, Settings, Simulation, simulate
from core.answers.nextbatch.strategies import DEFAULT, STRATEGIES
from core.base.paths import DEFAULT_DATA, PROJECT_ROOT, cache_root

RESULTS = Path(__file__).parent / "results"
SETTINGS = Settings(STRATEGIES, start=1, batch=10, rounds=6, seeds=(1, 2, 3))
TARGET = 0.8  # the default strategy's labels to match random, as a share of random's


def row(found: Simulation) -> Row:
    """The bench row: the default strategy's share of random's labels, against the target."""
    curve = next(c for c in found.curves if c.strategy == DEFAULT)
    share = found.labels_to_match_random(curve)
    return Row(
        suite="next batch",
        measure=f"labels to match random's final accuracy, {DEFAULT}",
        ours=math.inf if share is None else share.estimate,
        baseline=None,
        unit="x random's labels",
        better="lower",
        target=TARGET,
        note=found.verdict(),
    )


def _number(value: float | None, form: str) -> str:
    return "open" if value is None or not math.isfinite(value) else format(value, form)


def markdown(result: dict, found: Simulation, seconds: float) -> str:
    bench_row = row(found)
    labels = found.random.labels
    lines = [
        f"`{result['command']}` ({result['date']}, {seconds:.0f} s): {found.dataset} "
        f"({found.backbone}, {found.image_size} px), {found.holdout_size} holdout images; start "
        f"{SETTINGS.start} per class, {SETTINGS.rounds} rounds of {SETTINGS.batch} per class, seeds "
        f"{', '.join(map(str, SETTINGS.seeds))}.",
        "",
        "Holdout accuracy (mean over seeds) after each round, by labels spent:",
        "",
        "| strategy | "
        + " | ".join(str(n) for n in labels)
        + f" | labels to match random ({LEVEL:.0%} interval) |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for curve in found.curves:
        share = found.labels_to_match_random(curve)
        matched = (
            "never"
            if share is None
            else f"{share.estimate:.2f} ({_number(share.low, '.2f')} to {_number(share.high, '.2f')})"
        )
        accuracies = " | ".join(f"{p.accuracy:.3f}" for p in curve.rounds())
        lines.append(f"| {curve.strategy} | {accuracies} | {matched} |")
    met = {True: "met", False: "**missed**", None: ""}[bench_row.met]
    lines += [
        "",
        f"Target: {DEFAULT} needs at most {TARGET:g} of random's labels: {bench_row.ours:.2f}, {met}.",
        "",
        f"Verdict: {found.verdict()}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nextbatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="cache folder (default: $HMD_CACHE or ./cache)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    started = time.time()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    found = simulate(args.data, cache_root(args.cache), SETTINGS, say=say)
    if Path(found.dataset).is_relative_to(PROJECT_ROOT):  # the stored result names no local folder
        found = dataclasses.replace(found, dataset=str(Path(found.dataset).relative_to(PROJECT_ROOT)))
    seconds = time.time() - started
    result = {
        "command": "python -m bench.nextbatch",
        "date": time.strftime("%Y-%m-%d"),
        "seconds": seconds,
        "row": row(found).to_dict(),
        **found.to_dict(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nextbatch.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (RESULTS / "nextbatch.md").write_text(markdown(result, found, seconds))
    print(markdown(result, found, seconds))


if __name__ == "__main__":
    main()
