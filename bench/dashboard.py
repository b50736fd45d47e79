"""6. The Holdout and Experiments pages with 200 cached runs (AppTest), first and second render,
against the time to read those runs' files. A second render must not reload what did not change."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench.measure import Row, timed
from core import runs
from core.paths import PROJECT_ROOT, read_json, write_json
from core.splits import SEED_GRID

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
        for name in ("summary.json", "config.json"):
            record = read_json(folder / name)
            record["run_id"] = rid
            record["config"] = {**record["config"], "seed": 100 + i // len(SEED_GRID),
                                "slice": SEED_GRID[i % len(SEED_GRID)]}
            write_json(folder / name, record)


def run(source: Path, scratch: Path) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    make_runs(source, scratch)
    os.environ["HMD_CACHE"] = str(scratch)

    def read_everything() -> None:
        table = runs.list_runs(scratch)
        for summary in table:
            folder = runs.find_run(scratch, summary["run_id"])
            runs.load_predictions(folder)
            runs.load_metrics(folder)

    _, reading = timed(read_everything)
    rows = []
    for page in ("pages/4_Holdout.py", "pages/3_Experiments.py"):
        app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=300).run()
        app.switch_page(page)
        _, first = timed(app.run)
        _, second = timed(app.run)
        assert not app.exception, app.exception
        name = page.split("_", 1)[1].removesuffix(".py")
        rows += [Row("dashboard", f"{name} page, first render vs reading the files", first, reading,
                     "s", better="lower", note=f"{RUNS} runs"),
                 Row("dashboard", f"{name} page, second render vs reading the files", second, reading,
                     "s", better="lower", target=0.5, note="must not reload what did not change")]
    return rows
