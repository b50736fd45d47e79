"""The next batch against random on the bundled dataset: the simulation (start 1 per class,
batches of 10 per class, 6 rounds, 3 seeds) with every strategy, each strategy's labels to
reach random's final holdout accuracy as a share of random's labels, and the target: the
default strategy needs at most 0.8 of random's labels.

``python -m bench.nextbatch [--cache DIR] [--data DIR]`` (the cache's frozen features are
computed once if missing). Writes ``bench/results/nextbatch.json`` and ``.md``.

``python -m bench.nextbatch --render`` trains nothing: it rebuilds the simulation from the stored
``nextbatch.json`` (its per-seed accuracies; every other number and the verdict computed again)
and writes both files again, as when the wording of the verdict changes. The measurement's
command, date and seconds stay; the render is recorded beside them.
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
    settings = found.settings
    rendered = result.get("rendered")
    again = (
        f" Rendered again from the stored per-seed accuracies by `{rendered['command']}` "
        f"({rendered['date']})."
        if rendered
        else ""
    )
    lines = [
        f"`{result['command']}` ({result['date']}, {seconds:.0f} s): {found.dataset} "
        f"({found.backbone}, {found.image_size} px), {found.holdout_size} holdout images; start "
        f"{settings.start} per class, {settings.rounds} rounds of {settings.batch} per class, seeds "
        f"{', '.join(map(str, settings.seeds))}.{again}",
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
            else f"{share.estimate:.0%} ({_number(share.low, '.0%')} to {_number(share.high, '.0%')})"
        )
        accuracies = " | ".join(f"{p.accuracy:.1%}" for p in curve.rounds())
        lines.append(f"| {curve.strategy} | {accuracies} | {matched} |")
    met = {True: "met", False: "**missed**", None: ""}[bench_row.met]
    lines += [
        "",
        f"Target: {DEFAULT} needs at most {TARGET:.0%} of random's labels: {bench_row.ours:.0%}, {met}.",
        "",
        f"Verdict: {found.verdict()}",
    ]
    return "\n".join(lines) + "\n"


def write(result: dict, found: Simulation) -> str:
    """``nextbatch.json`` and ``.md`` from ``result`` (the command, date and seconds) and the
    simulation ``found``; returns the markdown."""
    record = {
        "command": result["command"],
        "date": result["date"],
        "seconds": result["seconds"],
        **({"rendered": result["rendered"]} if "rendered" in result else {}),
        "row": row(found).to_dict(),
        **found.to_dict(),
    }
    text = markdown(record, found, record["seconds"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nextbatch.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    (RESULTS / "nextbatch.md").write_text(text)
    return text


def stored() -> tuple[dict, Simulation]:
    """The stored result and the simulation rebuilt from its per-seed accuracies."""
    result = json.loads((RESULTS / "nextbatch.json").read_text())
    return result, Simulation.from_dict(result)


def render() -> str:
    """Both files again from the stored per-seed accuracies, nothing trained."""
    result, found = stored()
    rendered = {"command": "python -m bench.nextbatch --render", "date": time.strftime("%Y-%m-%d")}
    return write({**result, "rendered": rendered}, found)


def measure(data: Path, cache: Path | None) -> str:
    """The simulation on ``data``, timed, and both files from it."""
    started = time.time()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    found = simulate(data, cache_root(cache), SETTINGS, say=say)
    if Path(found.dataset).is_relative_to(PROJECT_ROOT):  # the stored result names no local folder
        found = dataclasses.replace(found, dataset=str(Path(found.dataset).relative_to(PROJECT_ROOT)))
    result = {
        "command": "python -m bench.nextbatch",
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.time() - started,
    }
    return write(result, found)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nextbatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="cache folder (default: $HMD_CACHE or ./cache)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--render",
        action="store_true",
        help="rewrite both files from the stored nextbatch.json; train nothing",
    )
    args = parser.parse_args()
    print(render() if args.render else measure(args.data, args.cache))


if __name__ == "__main__":
    main()
