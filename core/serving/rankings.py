"""A pool's ranking (``python -m core next-batch --pool``) run apart from the page
(:mod:`core.serving.detached`): checking, decoding and extracting the features of a pool of tens of
thousands of images takes minutes, which a page shows as progress with the time left and can stop.

The key is what was asked (:func:`~core.answers.nextbatch.batch.request_key`); the batch's CSV and
Label Studio file go to that request's own folder. Asking again ranks again (the pool may have
changed since), while another tab or a rerun finds the last result of the same request.
"""

from __future__ import annotations

from pathlib import Path

from core.answers.nextbatch.batch import NextBatch, Request, request_key, with_own_files
from core.base.paths import read_json
from core.base.progress import Stage
from core.serving import detached
from core.serving.detached import Status

FOLDER = "nextbatch/rankings"
EXPECTS = "items"  # a key every batch holds


def _args(request: Request) -> tuple[str, ...]:
    """The command line of ``next-batch --pool`` for ``request``."""
    holdout, val, split_seed = request.split
    size = () if request.image_size is None else ("--image-size", str(request.image_size))
    return (
        *("--data", str(request.data), "--pool", str(request.pool), "--size", str(request.size)),
        *("--strategy", request.strategy, "--seed", str(request.seed), "--backbone", request.backbone),
        *("--out", str(request.out), "--label-studio", str(request.label_studio), *size),
        *("--holdout", str(holdout), "--val", str(val), "--split-seed", str(split_seed)),
    )


def start(cache_dir: Path, request: Request) -> str:
    """Rank the pool of ``request`` again, into its own folder under the cache, unless that is
    already under way; returns its key."""
    key = request_key(request)
    if status(cache_dir, key).running:
        return key
    (cache_dir / FOLDER / f"{key}.json").unlink(missing_ok=True)
    own = with_own_files(request, cache_dir)
    first = Stage("starting", 0, None, "img", 0.0)
    return detached.start(cache_dir, detached.Detached(FOLDER, key, "next-batch", _args(own), EXPECTS, first))


def status(cache_dir: Path, key: str) -> Status:
    """Where the ranking ``key`` stands."""
    return detached.status(cache_dir, FOLDER, key, EXPECTS)


def cancel(cache_dir: Path, key: str, wait_s: float = 5.0) -> Status:
    """Stop the ranking ``key`` within ``wait_s`` (then it is killed)."""
    return detached.cancel(cache_dir, FOLDER, key, EXPECTS, wait_s)


def load(found: Status) -> NextBatch | None:
    """The batch a finished ranking chose, None without one."""
    return None if found.result is None else NextBatch.from_dict(read_json(found.result))
