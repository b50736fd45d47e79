"""The benchmark table's verdicts: ratios and targets read the way the README states them."""

import time

import pytest
import torch

from bench.measure import Row, steady_rate
from bench.throughput import busy_share, device_intervals, training_window


def test_higher_is_better_ratio_against_target():
    row = Row("fine-tune", "ours vs plain", ours=90.0, baseline=100.0, unit="img/s", target=0.9)
    assert row.ratio == pytest.approx(0.9) and row.met is True
    assert Row("x", "y", 80.0, 100.0, "img/s", target=0.9).met is False


def test_lower_is_better_absolute_target():
    assert Row("grid", "cached", ours=0.4, baseline=None, unit="s", better="lower", target=1.0).met
    assert not Row("grid", "cached", ours=1.4, baseline=None, unit="s", better="lower", target=1.0).met
    assert Row("x", "y", 1.0, 2.0, "s", better="lower").met is None


def test_steady_rate_skips_warmup_steps():
    stamps = [0.0, 5.0, 6.0, 7.0, 8.0]  # a slow first step, then one step a second
    assert steady_rate(stamps, items_per_step=32, warmup=1) == pytest.approx(32.0)
    with pytest.raises(ValueError):
        steady_rate([0.0, 1.0], 32, warmup=2)


def test_busy_share_counts_overlapping_work_once():
    assert busy_share([(0.0, 4.0), (6.0, 10.0)]) == pytest.approx(0.8)  # idle 4..6
    assert busy_share([(0.0, 6.0), (2.0, 4.0), (5.0, 10.0)]) == pytest.approx(1.0)  # two streams
    assert busy_share([(5.0, 6.0), (0.0, 1.0)]) == pytest.approx(1 / 3)  # any order
    assert busy_share([]) == 0.0


def test_device_intervals_leave_out_annotations():
    """The GPU-busy figure is built from profiler events; an annotation around a step spans the
    whole step and would count idle time as busy. Checked with CPU events, the same API."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, record_function

    matrix = torch.rand(64, 64)
    with profile(activities=[ProfilerActivity.CPU]) as profiler, record_function("whole step"):
        matrix @ matrix
        time.sleep(0.05)  # the device idles inside the step
        matrix @ matrix
    events = list(profiler.events())
    intervals = device_intervals(events, DeviceType.CPU)
    annotation = next(e for e in events if e.name == "whole step")
    assert (annotation.time_range.start, annotation.time_range.end) not in intervals
    assert len(intervals) == sum(e.name.startswith("aten::") for e in events) > 0
    assert busy_share(intervals) < 0.5


def test_training_window_skips_warmup_steps():
    """The GPU-busy share is taken over the steady steps only; the window is found from the
    optimizer's own profiler ranges, checked here on the CPU."""
    from torch.profiler import ProfilerActivity, profile

    layer = torch.nn.Linear(8, 2)
    optimizer = torch.optim.AdamW(layer.parameters())
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(5):
            layer(torch.rand(4, 8)).sum().backward()
            optimizer.step()
    events = list(profiler.events())
    steps = sorted(e.time_range.start for e in events if e.name == "Optimizer.step#AdamW.step")
    assert len(steps) == 5
    start, end = training_window(events)
    assert start == steps[2] and end > steps[4]
    with pytest.raises(ValueError, match="only 5 optimizer steps"):
        training_window(events, warmup=5)


def test_gallery_results_are_what_the_curves_give_on_the_stored_runs():
    """The README's gallery figures come from bench/results/gallery.json; scoring its stored runs
    again with the current curve code must give the same predictions, so a change to the curves
    that was not re-benchmarked fails here (the 60,000-image curve: the issue's own measure)."""
    import json
    from pathlib import Path

    from bench import gallery

    stored = json.loads((Path(gallery.__file__).parent / "results" / "gallery.json").read_text())
    (about,) = [d for d in stored["datasets"] if d["dataset"] == "fm60k"]
    observations = [gallery.curves.Observation(*row) for row in about["observations"]]
    again = gallery.ours(observations, about["fit_up_to"], about["holdout"])
    kept = [p for p in stored["predictions"] if p["dataset"] == "fm60k" and p["method"] == "ours"]
    assert [n for n, *_ in again] == [p["n"] for p in kept] == [500, 800, 1300, 2000, 3000, 4800]
    for (_, predicted, low, high), p in zip(again, kept, strict=True):
        assert (predicted, low, high) == pytest.approx((p["predicted"], p["low"], p["high"]), abs=1e-9)
