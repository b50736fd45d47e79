"""The next-batch backtest (``python -m core next-batch --simulate``) run apart from the page
(:mod:`core.serving.detached`): minutes of head fits never run in a page's script thread. Its key
is the dataset's fingerprint (its contents) and the settings, so a result is shown again for the
same question and asked once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from core.answers.nextbatch.simulate import Settings, Simulation
from core.base.paths import read_json
from core.base.progress import Stage
from core.serving import detached
from core.serving.detached import Status

FOLDER = "nextbatch"
EXPECTS = "verdict"  # a key every backtest result holds
ROUNDS = "replaying rounds"  # the stage the command reports, one round at a time


@dataclass(frozen=True)
class Request:
    """A backtest to run: the dataset (by path, keyed by its fingerprint), the settings, and the
    features and split it runs on (those of the runs whose curve the page shows)."""

    data: str
    fingerprint: str
    settings: Settings
    backbone: str
    image_size: int | None
    split: tuple[float, float, int]

    def key(self) -> str:
        fields = [self.fingerprint, self.settings.to_dict(), self.backbone, self.image_size, list(self.split)]
        return hashlib.blake2b(json.dumps(fields).encode(), digest_size=8).hexdigest()

    def args(self) -> tuple[str, ...]:
        """The command line of ``next-batch --simulate`` for this request."""
        s = self.settings
        size = () if self.image_size is None else ("--image-size", str(self.image_size))
        holdout, val, split_seed = self.split
        return (
            *("--data", self.data, "--simulate", "--strategies", ",".join(s.strategies)),
            *("--start", str(s.start), "--batch", str(s.batch), "--rounds", str(s.rounds)),
            *("--seeds", ",".join(map(str, s.seeds)), "--backbone", self.backbone, *size),
            *("--holdout", str(holdout), "--val", str(val), "--split-seed", str(split_seed)),
        )

    def detached(self) -> detached.Detached:
        first = Stage(ROUNDS, 0, self.settings.replays, "rounds", 0.0)
        return detached.Detached(FOLDER, self.key(), "next-batch", self.args(), EXPECTS, first)


def start(cache_dir, request: Request) -> str:
    """Start the backtest of ``request`` unless its result exists or it is running; returns its key."""
    return detached.start(cache_dir, request.detached())


def status(cache_dir, key: str) -> Status:
    """Where the backtest ``key`` stands."""
    return detached.status(cache_dir, FOLDER, key, EXPECTS)


def cancel(cache_dir, key: str, wait_s: float = 5.0) -> Status:
    """Stop the backtest ``key`` within ``wait_s`` (then it is killed)."""
    return detached.cancel(cache_dir, FOLDER, key, EXPECTS, wait_s)


def load(found: Status) -> Simulation | None:
    """The stored result of a finished backtest, None without one."""
    return None if found.result is None else Simulation.from_dict(read_json(found.result))
