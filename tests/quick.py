"""The run most tests ask for: frozen Lite0 on the tiny dataset at 64 px, a few epochs."""

from __future__ import annotations

from pathlib import Path

from core.config import RunConfig


def quick_run(data: Path | str, **overrides) -> RunConfig:
    return RunConfig(
        **{
            "data": str(data),
            "backbone": "efficientnet_lite0",
            "mode": "frozen",
            "slice": "1/class",
            "seed": 1,
            "image_size": 64,
            "epochs": 2,
            **overrides,
        }
    )
