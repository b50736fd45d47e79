"""Every number in the README's result tables comes from a command's stored output: a table marked
``<!-- table: bench/results/FILE -->`` is that file's table, row for row, and the seed-grid table
is the mean and spread of the runs ``make sweep`` stored. A README number that differs from its
result fails here."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.base.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
MARKER = re.compile(r"<!-- table: (?P<path>[\w./-]+) -->\n(?P<table>(?:\|.*\n)+)")


def marked_tables() -> list[tuple[str, list[str]]]:
    return [(m["path"], m["table"].splitlines()) for m in MARKER.finditer(README)]


def test_the_readme_marks_its_result_tables():
    assert {path for path, _ in marked_tables()} >= {
        "bench/results/quick.md",
        "bench/results/quick-trust.md",
        "bench/results/gallery.md",
        "bench/results/nextbatch.md",
        "bench/results/ranking.md",
    }


@pytest.mark.parametrize(("path", "table"), marked_tables(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_marked_table_is_its_result_files_table_row_for_row(path, table):
    result = (PROJECT_ROOT / path).read_text().splitlines()
    start = result.index(table[0])  # the header: fails when the result has no such table
    assert result[start : start + len(table)] == table
    following = result[start + len(table)] if start + len(table) < len(result) else ""
    assert not following.startswith("|"), f"the README leaves out rows of {path}"


def test_the_seed_grid_table_is_the_mean_and_spread_of_the_stored_runs():
    lines = (PROJECT_ROOT / "bench/results/seed-grid.txt").read_text().splitlines()
    header = lines[0].split()
    runs = [
        dict(zip(header, line.split(), strict=True))
        for line in lines[1:]
        if re.match(r"^[0-9a-f]{12} ", line)
    ]
    columns = ("accuracy", "P(true)>0.5", "P(true)>0.8")
    for text in dict.fromkeys(run["slice"] for run in runs):
        mine = [run for run in runs if run["slice"] == text]
        cells = []
        for column in columns:
            values = np.array([float(run[column]) for run in mine])
            cells.append(f"{values.mean():.3f} ± {values.std(ddof=1):.3f}")
        coverage = np.mean([float(run["coverage@0.8"]) for run in mine])
        row = f"| {text} | {int(mine[0]['n_train']) // 10} | {' | '.join(cells)} | {coverage:.2f} |"
        assert row in README, row
