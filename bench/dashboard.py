"""6. The Holdout and Experiments pages with 200 cached runs (AppTest), first and second render,
against the time to read those runs' files. A second render must not reload what did not change."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from bench.measure import Row, timed
from core.base.paths import PROJECT_ROOT, read_json, write_json
from core.data.splits import ORIGINAL_SLICES
from core.store import runs
from core.store.record import Summary

RUNS = 200


def make_runs(source: Path, target: Path, count: int = RUNS) -> None:
    """``count`` run folders copied from the complete runs in ``source``, each with its own id
    and configuration (seed and slice), as a long-used cache would hold."""
    originals = [p for p in runs.runs_dir(source).iterdir() if not p.name.startswith(".")]
    for i in range(count):
        original = originals[i % len(originals)]
        rid = f"bench{i:07d}"
        folder = runs.runs_dir(target) / rid
        shutil.copytree(original, folder)
        run = runs.RunFolder(folder)
        summary = Summary.from_dict(read_json(run.summary))
        config = dataclasses.replace(
            summary.config,
            seed=100 + i // len(ORIGINAL_SLICES),
            slice=ORIGINAL_SLICES[i % len(ORIGINAL_SLICES)],
        )
        info = dataclasses.replace(summary.info, run_id=rid, config=config)
        write_json(run.config, info.to_dict())
        write_json(run.summary, dataclasses.replace(summary, info=info).to_dict())
        runs.write_manifest(run)


def run(source: Path, scratch: Path) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    make_runs(source, scratch)
    os.environ["HMD_CACHE"] = str(scratch)

    def read_everything() -> None:
        for summary in runs.list_runs(scratch):
            run = runs.load(scratch, summary.run_id)
            run.predictions()
            run.metrics()

    _, reading = timed(read_everything)
    rows = []
    for page in ("pages/4_Holdout.py", "pages/3_Experiments.py"):
        app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300).run()
        app.switch_page(page)
        _, first = timed(app.run)
        _, second = timed(app.run)
        assert not app.exception, app.exception
        name = page.split("_", 1)[1].removesuffix(".py")
        rows += [
            Row(
                "dashboard",
                f"{name} page, first render vs reading the files",
                first,
                reading,
                "s",
                better="lower",
                note=f"{RUNS} runs",
            ),
            Row(
                "dashboard",
                f"{name} page, second render vs reading the files",
                second,
                reading,
                "s",
                better="lower",
                target=0.5,
                note="must not reload what did not change",
            ),
        ]
    return rows
