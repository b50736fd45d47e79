"""The round plan: labels collected in rounds toward a target, each round's predicted accuracy
with its interval and the chance of having reached the target, through `python -m core plan`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.answers import budget, curves, rounds
from core.base.intervals import Estimate
from tests.command import core

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def analysis(curve_cache, curve_data) -> budget.Analysis:
    return budget.analyse(budget.select(curve_cache, curve_data))


def test_the_chance_of_reaching_the_target_agrees_with_the_stated_interval():
    """A target inside the stated interval is never near certain: the plan once said "chance
    100%" beside "80% interval 80% to 97%" for 87% (the bootstrap alone, without the widening)."""
    stated = Estimate(0.89, 0.80, 0.975)
    assert rounds.p_reached(stated, 0.80, 0.8) == pytest.approx(0.9)  # the low end: 90% above it
    assert rounds.p_reached(stated, 0.975, 0.8) == pytest.approx(0.1)  # the high end: 10% above it
    assert rounds.p_reached(stated, 0.89, 0.8) == pytest.approx(0.5)
    assert 0.5 < rounds.p_reached(stated, 0.87, 0.8) < 0.9, "inside the interval: likely, not certain"
    assert rounds.p_reached(Estimate(0.9, 0.9, 0.9), 0.87, 0.8) == 1.0


def test_rounds_double_until_the_target_is_likely_or_the_curve_is_out_of_reach(analysis):
    target = analysis.points[-1].accuracy + 0.02
    found = rounds.plan(analysis, target)
    start = int(analysis.points[-1].images_per_class)
    assert [r.cumulative_per_class for r in found.rounds] == [
        start * 2**k for k in range(1, len(found.rounds) + 1)
    ]
    last = found.rounds[-1]
    assert last.p_reached >= rounds.ENOUGH or not last.reliable or len(found.rounds) == rounds.MAX_ROUNDS
    chances = [r.p_reached for r in found.rounds]
    assert chances == sorted(chances), "every family rises with n: more labels never lower the chance"
    for r in found.rounds:  # each round's accuracy is the answer's own, interval included
        assert (
            r.accuracy == curves.answer_at(analysis.fitted, r.cumulative_per_class, analysis.level).estimate
        )


def test_the_plan_command_prints_the_contract_and_reproduces(curve_cache, curve_data):
    args = ("plan", "--data", str(curve_data), "--target", "0.9", "--round-size", "20", "--json")
    first, again = (core(curve_cache, *args) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout, "a plan reproduces from its inputs"
    found = json.loads(first.stdout)
    steps = [r["cumulative_per_class"] for r in found["rounds"]]
    assert steps and all(b - a == 20 for a, b in zip(steps, steps[1:], strict=False))
    assert set(found["rounds"][0]) >= {"cumulative_per_class", "accuracy", "p_reached"}
    assert set(found["rounds"][0]["accuracy"]) == {"estimate", "low", "high"}
    assert (
        found["assumptions"]["round_size_per_class"] == 20 and found["assumptions"]["labels_per_round"] == 80
    )
    bad = core(curve_cache, "plan", "--data", str(curve_data), "--target", "0.9", "--round-size", "0")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --round-size must be at least 1 image per class, not 0"
    ]


def test_a_target_the_largest_slice_already_meets_gets_no_round(analysis):
    """The Next batch page once planned "label 240 more, chance 93%" for 79% beside "now 83%"."""
    top = analysis.points[-1]
    found = rounds.plan(analysis, top.accuracy - 0.01)
    assert found.rounds == ()
    assert found.reason.startswith(f"None needed for {top.accuracy - 0.01:.0%}: the models trained on ")
    assert f"already right {top.accuracy:.1%} of the time (95% interval " in found.reason


def test_rounds_on_a_curve_that_stopped_rising_carry_its_verdict(analysis):
    """On an unseen 4-class set the Learning curve page said more labels were unlikely to help
    while the Next batch page planned 3,840 more with no word of it."""
    top = analysis.points[-1]
    stopped = budget.Plateau(30.0, top.accuracy, "Accuracy has not moved beyond noise since about 30.")
    found = rounds.plan(dataclasses.replace(analysis, plateau=stopped), min(0.99, top.accuracy + 0.05))
    assert found.rounds and found.caveat == (
        "Accuracy has not moved beyond noise since about 30. The rounds below are for anyone who "
        "labels anyway."
    )
    assert found.to_dict()["caveat"] == found.caveat
    rising = rounds.plan(dataclasses.replace(analysis, plateau=None), min(0.99, top.accuracy + 0.05))
    assert rising.caveat is None
