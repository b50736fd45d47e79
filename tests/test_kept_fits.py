"""Curve fits kept in the cache: read back by another process instead of refitted, never
stale, never in the way (damaged, read-only, a full disk)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core.answers import curves, kept_fits
from core.answers.curves import answers
from core.base.errors import DiskFull
from core.base.paths import read_only
from tests.test_curves import POWER, synthetic

RUNS = tuple(synthetic("power_law", POWER))


def fit(runs=RUNS):
    return curves.fit(runs, 30, 0, 500)


def inputs(runs=RUNS) -> tuple:
    return ("fit", runs, 30, 0, 500)


def no_fitting(monkeypatch) -> None:
    def refuse(*args):
        raise AssertionError("fitted again")

    monkeypatch.setattr(answers, "fit_family", refuse)
    monkeypatch.setattr(answers, "fit_all", refuse)


def test_a_second_process_reads_the_fit_back_instead_of_fitting(tmp_path, monkeypatch):
    first = kept_fits.kept(tmp_path, inputs(), fit)
    no_fitting(monkeypatch)
    again = kept_fits.kept(tmp_path, inputs(), fit)
    assert again.weights == first.weights
    for name, params in first.params.items():
        np.testing.assert_array_equal(again.params[name], params)
    assert curves.answer_at(again, 1000, 0.8) == curves.answer_at(first, 1000, 0.8)


def test_another_run_or_other_curve_code_is_another_fit(tmp_path, monkeypatch):
    kept_fits.kept(tmp_path, inputs(), fit)
    changed = (*RUNS[:-1], curves.Observation(RUNS[-1].n, RUNS[-1].accuracy - 0.01, 2, 0))
    assert kept_fits.path_for(tmp_path, inputs(changed)) != kept_fits.path_for(tmp_path, inputs())
    before = kept_fits.path_for(tmp_path, inputs())
    monkeypatch.setattr(kept_fits, "code_digest", lambda: "the curves edited")
    assert kept_fits.path_for(tmp_path, inputs()) != before


def test_a_damaged_fit_is_fitted_again_and_replaced(tmp_path, capsys):
    path = kept_fits.path_for(tmp_path, inputs())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x05half a pickle")
    found = kept_fits.kept(tmp_path, inputs(), fit)
    assert found.weights == fit().weights
    assert "is damaged" in capsys.readouterr().err
    again = kept_fits.kept(tmp_path, inputs(), lambda: pytest.fail("fitted a third time"))
    assert again.weights == found.weights


def test_nothing_is_kept_while_writes_are_off_or_the_disk_is_full(tmp_path, monkeypatch):
    with read_only("a viewer"):
        assert kept_fits.kept(tmp_path, inputs(), fit).weights
    assert not (tmp_path / kept_fits.FOLDER).exists()

    def full(*args, **kwargs):
        raise DiskFull("no space left")

    monkeypatch.setattr(kept_fits, "write_atomic", full)
    assert kept_fits.kept(tmp_path, inputs(), fit).weights, "the answer stands without its copy"


def test_beyond_the_bound_the_oldest_fits_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(kept_fits, "KEEP", 3)
    written = []
    for number in range(5):  # cheap stand-ins for fits: any value is kept the same way
        kept_fits.kept(tmp_path, ("fit", number), lambda number=number: number)
        path = kept_fits.path_for(tmp_path, ("fit", number))
        os.utime(path, ns=(number * 10**9, number * 10**9))  # written a second apart
        written.append(path)
    kept_fits.kept(tmp_path, ("fit", 5), lambda: 5)
    assert sorted((tmp_path / kept_fits.FOLDER).glob("*.pickle")) == sorted(
        [*written[3:], kept_fits.path_for(tmp_path, ("fit", 5))]
    )
    assert kept_fits.kept(tmp_path, ("fit", 4), lambda: pytest.fail("fitted again")) == 4
