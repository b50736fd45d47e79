"""The next batch to label: a strategy's picks from an unlabelled pool, ranked, each with the
current head's suggested class and a reason in words, written out for the labelling tool.

This is ``python -m core next-batch --pool``: :mod:`.pool` gives the candidates (near-copies and
unreadable files already left out, and named), :mod:`.strategies` ranks them, :mod:`.exports`
writes the CSV and the Label Studio file. Bad input fails before any feature is computed where it
can: an unknown strategy, a size below 1, a pool with fewer readable images than the batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.answers import budget
from core.answers.audit import DEFAULT_SPLIT
from core.answers.nextbatch.exports import BatchItem, write_exports
from core.answers.nextbatch.pool import Excluded, Pool, load_pool
from core.answers.nextbatch.strategies import DEFAULT, STRATEGIES, Candidates, Pick, select
from core.base.errors import UserError, check_choice
from core.base.progress import announce
from core.store.config import ORIGINAL_BACKBONE


@dataclass(frozen=True)
class NextBatch:
    """The batch, best first, the pool images left out, and what produced it."""

    dataset: str
    pool: str
    strategy: str
    size: int
    seed: int
    head_run: str | None  # the run whose head suggested the classes; None at the cold start
    class_weights: dict[str, float] | None  # the batch's share per class (hybrid); None: even
    backbone: str
    image_size: int
    items: tuple[BatchItem, ...]
    excluded: tuple[Excluded, ...]
    files: tuple[str, ...]  # what was written: the CSV, the Label Studio tasks and their config

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "pool": self.pool,
            "strategy": self.strategy,
            "size": self.size,
            "seed": self.seed,
            "cold_start": self.head_run is None,
            "head_run": self.head_run,
            "class_weights": self.class_weights,
            "backbone": self.backbone,
            "image_size": self.image_size,
            "items": [item.to_dict() for item in self.items],
            "excluded": [item.to_dict() for item in self.excluded],
            "files": list(self.files),
        }

    @classmethod
    def from_dict(cls, record: dict) -> NextBatch:
        """The batch :meth:`to_dict` wrote (``next-batch --json``), read back."""
        fields = {name: value for name, value in record.items() if name != "cold_start"}
        return cls(
            **{
                **fields,
                "items": tuple(BatchItem(**item) for item in record["items"]),
                "excluded": tuple(Excluded(**item) for item in record["excluded"]),
                "files": tuple(record["files"]),
            }
        )


@dataclass(frozen=True)
class Request:
    """What ``next-batch --pool`` is asked for."""

    data: Path
    pool: Path
    size: int
    strategy: str = "hybrid"
    seed: int = 1
    out: Path | None = None
    label_studio: Path | None = None
    split: tuple[float, float, int] = DEFAULT_SPLIT
    backbone: str = ORIGINAL_BACKBONE  # at the cold start only: a head's run says which otherwise
    image_size: int | None = None


def request_key(request: Request) -> str:
    """What was asked, as a short name: the same batch asked again has the same key."""
    asked = [
        str(request.data.resolve()),
        str(request.pool.resolve()),
        request.size,
        request.strategy,
        request.seed,
        list(request.split),
        request.backbone,
        request.image_size,
    ]
    return hashlib.sha256(json.dumps(asked).encode()).hexdigest()[:12]


def with_own_files(request: Request, cache_dir: Path) -> Request:
    """``request`` writing its CSV and Label Studio file into a folder of its own under the cache,
    named by what was asked: two people choosing batches from one dashboard never overwrite each
    other's files, and asking again for the same batch finds the same folder."""
    folder = cache_dir / "nextbatch" / "batches" / request_key(request)
    return dataclasses.replace(request, out=folder / "batch.csv", label_studio=folder / "tasks.json")


def next_batch(request: Request, cache_dir: Path, progress: bool = False) -> NextBatch:
    """Choose, rank and export the next batch.

    Raises:
        UserError: an unknown strategy, a size below 1 or larger than what the pool can offer,
            an empty pool, a pool that is the holdout, a missing folder; nothing is written.
    """
    check_choice("strategy", request.strategy, STRATEGIES)
    if request.size < 1:
        raise UserError(f"--size must be at least 1, not {request.size}")
    if request.out is None:
        raise UserError("next-batch --pool needs --out FILE: where to write the batch as CSV")
    pool = load_pool(
        request.data,
        request.pool,
        cache_dir,
        request.split,
        progress,
        at_least=request.size,
        cold=(request.backbone, request.image_size),
    )
    # only hybrid shares the batch between classes; fitting every class's curve costs minutes on
    # a large dataset, so the other strategies do not pay for it
    weights = (
        class_weights(cache_dir, request.data, request.split, request.size)
        if request.strategy == DEFAULT
        else None
    )
    candidates = Candidates(pool.features, pool.probs, pool.labelled, pool.classes, weights)
    announce(f"ranking by {request.strategy}")
    items = tuple(
        _item(pool, rank, pick)
        for rank, pick in enumerate(select(request.strategy, candidates, request.size, request.seed), start=1)
    )
    written = write_exports(items, pool.classes, request.strategy, request.out, request.label_studio)
    return NextBatch(
        dataset=str(Path(request.data).expanduser().resolve()),
        pool=str(pool.root),
        strategy=request.strategy,
        size=request.size,
        seed=request.seed,
        head_run=pool.head_run,
        class_weights=None if weights is None else dict(zip(pool.classes, weights.tolist(), strict=True)),
        backbone=pool.backbone,
        image_size=pool.image_size,
        items=items,
        excluded=pool.excluded,
        files=tuple(str(path) for path in written),
    )


def class_weights(
    cache_dir: Path, data: str | Path, split: tuple[float, float, int], size: int
) -> np.ndarray | None:
    """The budget's per-class allocation of this batch's labels, as shares of the batch (hybrid
    shares the batch by it: the classes whose curves still rise get more); ``None`` (an even
    split) without runs to allocate from."""
    try:
        selection = budget.select(cache_dir, data, None, *split)
    except UserError:  # no runs on this dataset and split yet: the cold start
        return None
    extra = budget.allocate(selection, size).extra
    shares = np.array([extra.get(name, 0) for name in selection.classes], dtype=np.float64)
    return shares / shares.sum() if shares.sum() > 0 else None


def _item(pool: Pool, rank: int, pick: Pick) -> BatchItem:
    suggested = None if pick.suggested is None else pool.classes[pick.suggested]
    return BatchItem(
        str(pool.root / pool.paths[pick.index]), rank, pick.score, suggested, pick.p_suggested, pick.reason
    )
