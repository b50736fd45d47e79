"""Where the fitted answer and the measured slices disagree, in words that say which to believe."""

from __future__ import annotations

from core.answers import curves
from core.answers.budget.points import CurvePoint
from core.base.intervals import Estimate, share, wilson
from core.base.words import counted


def measured_below(
    points: tuple[CurvePoint, ...], needed: curves.Answer, target: float, n_holdout: int
) -> str | None:
    """A warning when the curve puts the target below the largest slice measured, yet that
    slice's models measure below the target: a room would read "about 32 images" beside "right
    58% at 120" as a contradiction, so the words say which to believe and why, else None."""
    if needed.estimate is None or not points:
        return None
    largest = max(points, key=lambda point: point.images_per_class)
    if needed.estimate.estimate >= largest.images_per_class or largest.accuracy >= target:
        return None
    measured = wilson(round(largest.accuracy * n_holdout), n_holdout)
    why = (
        f"within what {n_holdout:,} holdout images can tell apart (95% interval "
        f"{measured.low:.1%} to {measured.high:.1%})"
        if measured.high >= target
        else "further below than the holdout's noise explains: here the curve is optimistic"
    )
    return (
        f"Measured below the target: the models trained on {largest.images_per_class:,.0f} images per class "
        f"are right {largest.accuracy:.1%} of the time, under {share(target)}, though the curve puts "
        f"{share(target)} at about {needed.estimate.estimate:,.0f}; the difference is {why}. Trust the "
        "measurement: the target is not reached yet."
    )


def measured_above(
    points: tuple[CurvePoint, ...], needed: curves.Answer, target: float, n_holdout: int
) -> str | None:
    """A warning when a measured slice already reaches the target but the answer puts it further
    away, else None. The smallest slice when even it reaches the target and the curves put it
    below it ("about 0 images per class, 80% interval 0 to 2,400" for a target under the 1 per
    class slice's accuracy); the largest when it reaches the target and the curves put it beyond,
    or nowhere ("90% may never be reached" beside 91.7% measured, while the round plan said no
    round was needed). The words say which to believe and why."""
    if not points:
        return None
    smallest = min(points, key=lambda point: point.images_per_class)
    largest = max(points, key=lambda point: point.images_per_class)
    estimate = needed.estimate.estimate if needed.estimate else None
    if smallest.accuracy >= target and (estimate is None or estimate < smallest.images_per_class):
        trained = counted(round(smallest.images_per_class), "image")
        return (
            f"Already reached with the smallest slice measured: the models trained on {trained} per class "
            f"are right {smallest.accuracy:.1%} of the time, at or above {share(target)}. The curves say "
            "nothing about fewer images than that."
        )
    if largest.accuracy < target or (estimate is not None and estimate <= largest.images_per_class):
        return None
    curve = "give no estimate" if estimate is None else f"put {share(target)} at about {estimate:,.0f}"
    measured = wilson(round(largest.accuracy * n_holdout), n_holdout)
    # on a few holdout images "right 100%" reaches 99% only by luck: the words say how sure it is
    why = (
        f"within what {n_holdout:,} holdout images can tell apart (95% interval {measured.low:.1%} to "
        f"{measured.high:.1%}): the measurement says the target is reached, but these holdout images "
        "cannot confirm it"
        if measured.low < target
        else "further above than the holdout's noise explains: here the curve is pessimistic. Trust the "
        "measurement: the target is reached already"
    )
    return (
        f"Measured at or above the target: the models trained on {largest.images_per_class:,.0f} images per "
        f"class are right {largest.accuracy:.1%} of the time, though the curves {curve}; the difference "
        f"is {why}."
    )


def ceiling_below(points: tuple[CurvePoint, ...], ceiling: Estimate | None, level: float) -> str | None:
    """A warning when even the top of the fitted ceiling's interval lies below a measured slice:
    "ceiling 61.5%" beside a measured 64.4% reads as a contradiction, so the words say which to
    believe; else None."""
    if ceiling is None or not points:
        return None
    best = max(points, key=lambda point: point.accuracy)
    if ceiling.high >= best.accuracy:
        return None
    return (
        f"The fitted curves level off at {ceiling.estimate:.1%} ({level:.0%} interval {ceiling.low:.1%} to "
        f"{ceiling.high:.1%}), below the {best.accuracy:.1%} measured at {best.images_per_class:,.0f} images "
        "per class: at the top they do not follow the measurements. Trust the measured slices, and read "
        "answers above the ceiling as unknown rather than out of reach."
    )
