"""The caveats beside an answer that a room would otherwise read as contradictions: a curve that
says the target is reached before the largest slice measured while that slice measures below it,
or further away (or never) while a measured slice already reaches it, and a fitted ceiling below a
measured slice."""

from __future__ import annotations

import dataclasses

from core.answers.budget import (
    BudgetReport,
    CurvePoint,
    ceiling_below,
    measured_above,
    measured_below,
    ratio_words,
)
from core.answers.curves import Answer, Backtest, BacktestRow
from core.base.intervals import Estimate
from core.present.story_words import answer_sentence


def point(n: float, accuracy: float) -> CurvePoint:
    return CurvePoint(f"{n:g}/class", n, accuracy, 3, None, None, False)


def answer(estimate: float) -> Answer:
    return Answer(Estimate(estimate, estimate * 0.7, estimate * 3))


def test_a_largest_slice_below_the_target_is_said_to_be_within_the_holdouts_noise():
    said = measured_below((point(30, 0.55), point(120, 0.583)), answer(32), 0.6, 60)
    assert said == (
        "Measured below the target: the models trained on 120 images per class are right 58.3% of "
        "the time, under 60%, though the curve puts 60% at about 32; the difference is within what "
        "60 holdout images can tell apart (95% interval 45.7% to 69.9%). Trust the measurement: the "
        "target is not reached yet."
    )


def test_a_largest_slice_far_below_the_target_calls_the_curve_optimistic():
    said = measured_below((point(1200, 0.80),), answer(500), 0.9, 3000)
    assert "further below than the holdout's noise explains: here the curve is optimistic" in said


def test_no_caveat_when_the_measurement_agrees_or_the_answer_is_beyond_the_slices():
    assert measured_below((point(120, 0.61),), answer(32), 0.6, 60) is None  # reached, as the curve says
    assert measured_below((point(120, 0.55),), answer(300), 0.6, 60) is None  # not reached, nor predicted
    assert measured_below((), answer(32), 0.6, 60) is None
    assert measured_below((point(120, 0.5),), Answer(None, reason="no curve"), 0.6, 60) is None


def test_a_target_the_largest_slice_reaches_is_said_to_be_reached_whatever_the_curves_say():
    points = (point(1, 0.517), point(80, 0.917), point(200, 0.906), point(240, 0.912))
    said = measured_above(points, Answer(None, True, "12% of the bootstrap curves never reach 90%"), 0.9, 60)
    assert said == (
        "Measured at or above the target: the models trained on 240 images per class are right 91.2% "
        "of the time, though the curves give no estimate; the difference is within what 60 holdout "
        "images can tell apart (95% interval 81.9% to 96.4%): the measurement says the target is "
        "reached, but these holdout images cannot confirm it."
    )
    far = measured_above((point(4800, 0.892),), answer(9000), 0.85, 6000)
    assert "put 85% at about 9,000" in far and "here the curve is pessimistic" in far
    assert far.endswith("Trust the measurement: the target is reached already.")


def test_a_target_under_the_smallest_slice_is_reached_there_not_at_a_fraction_of_an_image():
    points = (point(1, 0.395), point(2, 0.48), point(2400, 0.836))
    said = measured_above(points, Answer(Estimate(0.4, 0.1, 3)), 0.3, 1200)
    assert said == (
        "Already reached with the smallest slice measured: the models trained on 1 image per class are "
        "right 39.5% of the time, at or above 30%. The curves say nothing about fewer images than that."
    )


def test_no_reached_caveat_when_the_answer_lies_within_the_measured_slices_or_none_reaches():
    points = (point(1, 0.395), point(300, 0.80), point(2400, 0.836))
    assert measured_above(points, answer(1780), 0.83, 1200) is None  # put before 2,400, as measured
    assert measured_above(points, Answer(None, True, "never"), 0.9, 1200) is None  # no slice reaches 90%
    assert measured_above(points, Answer(Estimate(3.0, 2.0, 5.0)), 0.39, 1200) is None
    assert measured_above((), answer(10), 0.5, 60) is None


def test_a_ceiling_below_a_measured_slice_is_said_to_be_the_curves_fault():
    points = (point(20, 0.60), point(50, 0.644), point(80, 0.63))
    said = ceiling_below(points, Estimate(0.615, 0.601, 0.628), 0.8)
    assert said == (
        "The fitted curves level off at 61.5% (80% interval 60.1% to 62.8%), below the 64.4% measured "
        "at 50 images per class: at the top they do not follow the measurements. Trust the measured "
        "slices, and read answers above the ceiling as unknown rather than out of reach."
    )


def test_no_ceiling_caveat_when_the_ceilings_interval_reaches_the_best_slice_or_there_is_none():
    points = (point(20, 0.60), point(50, 0.644))
    assert ceiling_below(points, Estimate(0.63, 0.60, 0.644), 0.8) is None  # its top reaches 64.4%
    assert ceiling_below(points, None, 0.8) is None
    assert ceiling_below((), Estimate(0.5, 0.4, 0.6), 0.8) is None


def backtest_of(ratio: float, *misses: float) -> Backtest:
    """A backtest whose held-out slices were predicted ``misses`` above what they measured."""
    rows = tuple(
        BacktestRow(n, 0.9, 0.9 + m, 0.8, 1.0, True) for n, m in zip((50, 80, 120), misses, strict=True)
    )
    return Backtest(30, rows, 0.01, 1.0, ratio)


def test_the_backtest_calls_a_direction_only_where_every_slice_missed_that_way():
    # the walk on an unseen 4-class set: 50 and 80 predicted above, the flat last slice below
    # (27.7 times its images): "ran pessimistic" beside a table of over-predictions
    said = ratio_words(backtest_of(27.7, 0.008, 0.019, -0.006))
    assert said == (
        "they put the largest slice's accuracy at 27.7 times the images it had, but 2 of the 3 "
        "slices were predicted above what they measured and 1 below: on this data the curves erred "
        "both ways"
    )
    assert "1 of the 3 slices was predicted above what it measured and 2 below" in ratio_words(
        backtest_of(27.7, -0.008, 0.019, -0.006)
    )
    assert ratio_words(backtest_of(3.0, -0.01, -0.02, -0.03)).endswith("the curves ran pessimistic")
    assert ratio_words(backtest_of(0.4, 0.01, 0.02, 0.03)).endswith("the curves ran optimistic")
    assert ratio_words(backtest_of(1.0, 0.01, -0.02, 0.03)) == (
        "they put the largest slice's accuracy at about the images it had"
    )


def test_a_room_hears_where_the_curve_gets_there_before_it_hears_where_it_levels_off():
    # fm60k at 90%: "levels off at about 90.7% ... may never get to 90%" read as a contradiction
    ceiling = Estimate(0.907, 0.887, 0.948)
    needed = Answer(None, True, "why", ceiling, {"power_law": 67_341.0}, point=67_341.0)
    report = BudgetReport(
        "fm60k", "frozen", 0.8, 6000, 0.9, needed, (point(300, 0.852), point(4800, 0.892)), Backtest(1200), ()
    )
    said = answer_sentence(report)
    assert said.startswith(
        "To be right 90% of the time: no estimate. The curve fitted to the measurements gets to 90% only "
        "at about 67,000 images per class (its 80% range there has no upper end) and levels off at about "
        "90.7% (80% interval 88.7% to 94.8%). Today it has 4,800 images per class and is right 89.2%"
    )
    within = Answer(None, True, "why", ceiling, {"power_law": 2_000.0}, point=2_000.0)
    assert "gets to" not in answer_sentence(dataclasses.replace(report, needed=within))
