"""Ranking a 5,000-image pool: each strategy's time to choose a batch of 100 from the bundled
dataset's frozen features, and ``diversity`` against a plain NumPy greedy k-center a competent
user would write (the same algorithm: distances to the nearest chosen image, updated per pick),
run in turns, median of five.

``python -m bench.ranking [--cache DIR]`` writes ``bench/results/ranking.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from core.answers.nextbatch.strategies import STRATEGIES, Candidates, select
from core.base.paths import DEFAULT_DATA, cache_root
from core.data.datasets import scan
from core.engine.pipeline import run_inputs
from core.store.config import default_config, resolve

RESULTS = Path(__file__).parent / "results"
BATCH, ROUNDS, LABELLED_PER_CLASS = 100, 5, 3


def plain_k_center(features: np.ndarray, labelled: np.ndarray, size: int) -> list[int]:
    """Greedy k-center on unit rows, from the labelled rows, distances by matrix products (on
    unit rows, squared distance = 2 - 2 cos): the baseline."""
    pool = features / np.linalg.norm(features, axis=1, keepdims=True)
    seen = labelled / np.linalg.norm(labelled, axis=1, keepdims=True)
    nearest = np.min(2 - 2 * pool @ seen.T, axis=1)
    picks = []
    for _ in range(size):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        nearest = np.minimum(nearest, 2 - 2 * pool @ pool[pick])
    return picks


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="cache folder (default: $HMD_CACHE or ./cache)")
    cache = cache_root(parser.parse_args().cache)
    dataset = scan(DEFAULT_DATA, cache)
    config = resolve(default_config(str(DEFAULT_DATA)), dataset.median_side)
    features = run_inputs(config, dataset, cache).array.astype(np.float64)
    rng = np.random.default_rng(0)
    labelled_rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(dataset.labels == k), LABELLED_PER_CLASS, replace=False)
            for k in range(len(dataset.classes))
        ]
    )
    pool = np.setdiff1d(np.arange(len(features)), labelled_rows)
    logits = features[pool] @ rng.normal(size=(features.shape[1], len(dataset.classes))) / 30
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)  # a stand-in head: the timing does not depend on its quality
    candidates = Candidates(features[pool], probs, features[labelled_rows], dataset.classes)
    times = {name: [] for name in (*STRATEGIES, "plain k-center")}
    for _ in range(ROUNDS):  # in turns, so that a slow spell of the machine hits every side
        for name in STRATEGIES:
            times[name].append(_seconds(lambda n=name: select(n, candidates, BATCH, 1)))
        times["plain k-center"].append(
            _seconds(lambda: plain_k_center(features[pool], features[labelled_rows], BATCH))
        )
    median = {name: statistics.median(found) for name, found in times.items()}
    result = {
        "command": "python -m bench.ranking",
        "date": time.strftime("%Y-%m-%d"),
        "pool": int(len(pool)),
        "batch": BATCH,
        "features": f"{config.backbone} at {config.image_size} px, {features.shape[1]} values",
        "seconds": median,
        "diversity_over_plain": median["diversity"] / median["plain k-center"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranking.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"`python -m bench.ranking` ({result['date']}): a batch of {BATCH} from a pool of {len(pool):,} "
        f"images ({result['features']}), median of {ROUNDS} runs in turns.",
        "",
        "| strategy | seconds | against plain NumPy k-center |",
        "|---|---|---|",
        *(
            f"| {name} | {median[name]:.3f} | "
            + (f"{median[name] / median['plain k-center']:.2f}x |" if name == "diversity" else "|")
            for name in (*STRATEGIES, "plain k-center")
        ),
    ]
    (RESULTS / "ranking.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
