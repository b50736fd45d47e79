"""The run most tests ask for: frozen Lite0 on the tiny dataset at 64 px, a few epochs."""

from __future__ import annotations

from pathlib import Path

from core.store.config import RunConfig


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


def until_drawn(app, timeout: float = 180.0):
    """Rerun an AppTest page until the CAM worker has drawn what it asked for (the page shows a
    progress bar meanwhile), and return it."""
    import time

    deadline = time.monotonic() + timeout
    app.run()
    while app.get("progress") and time.monotonic() < deadline:
        time.sleep(0.5)
        app.run()
    assert not app.get("progress"), "the CAM worker did not finish"
    return app
