"""The Present page's sentences and its chart, in a room's words: the question, the answer with
its interval, how far the backtest trusted the curve, and the learning curve restyled to be read
from the back of the room. Every number is the engine's (:mod:`core.answers.budget`)."""

from __future__ import annotations

import plotly.graph_objects as go

from core.answers import budget
from core.answers.curves import Backtest, reached_past
from core.base.intervals import wilson
from core.base.words import per_class, roughly

ROOM_FONT = 20
LEGEND = (  # the learning curve's legend in a room's words, by how each entry starts
    ("fitted curves,", "fitted curve's range"),
    ("fitted", "fitted curve"),
    ("spread", "spread between repeats"),
    ("measured", "measured"),
)


def opening(selection: budget.Selection, report: budget.BudgetReport) -> tuple[str, ...]:
    """The question in one sentence, then the dataset and what was measured."""
    dataset, points = selection.dataset, report.points
    return (
        f"How many labelled training images per class does {dataset.root.name} need for the model to be "
        f"right {report.target:.0%} of the time on new images?",
        f"{len(dataset):,} labelled images in {len(dataset.classes)} classes: {', '.join(dataset.classes)}.",
        f"We trained models on {len(points)} amounts, from {points[0].images_per_class:,.0f} to "
        f"{points[-1].images_per_class:,.0f} training images per class "
        f"({sum(p.runs for p in points)} distinct models), and scored every one on the same "
        f"{report.n_holdout:,} images it never saw.",
    )


def room(figure: go.Figure, target: float) -> go.Figure:
    """A chart readable from the back of a room: large type in percent, the legend below the plot."""
    axes = {"tickfont_size": ROOM_FONT - 2, "title_font_size": ROOM_FONT}
    figure.update_xaxes(**axes, title_text="training images per class (log scale)")
    figure.update_yaxes(**axes, tickformat=".0%", title_text="right on images it never saw")
    for trace in figure.data:
        trace.name = next(
            (words for start, words in LEGEND if (trace.name or "").startswith(start)), trace.name
        )
    for note in figure.layout.annotations:
        note.font.size = ROOM_FONT - 2
        note.text = f"target {target:.0%}" if note.text.startswith("target ") else note.text
    return figure.update_layout(
        font={"size": ROOM_FONT},
        height=520,
        legend={"orientation": "h", "y": -0.25, "x": 0, "font": {"size": ROOM_FONT - 4}},
        margin={"t": 20, "b": 10},
    )


def answer_sentence(report: budget.BudgetReport) -> str:
    """The answer with its interval, in the engine's own numbers (:func:`budget.stated`)."""
    last, images = report.points[-1], report.n_holdout
    measured = wilson(round(last.accuracy * images), images)
    today = (
        f"Today it has {last.images_per_class:,.0f} images per class and is right {last.accuracy:.1%} "
        f"of the time (95% interval {measured.low:.1%} to {measured.high:.1%} on {images:,} images)."
    )
    needed = report.needed
    if report.contradicted:
        return report.contradicted
    if not needed.estimate:
        flat = needed.ceiling
        # the fitted curve, not the measurements: its ceiling can lie below the best slice measured
        why = (
            f"The curve fitted to the measurements {_gets_there(report)}levels off at about "
            f"{flat.estimate:.1%} ({report.level:.0%} interval {flat.low:.1%} to {flat.high:.1%}). {today} "
            f"More images of the same kind may never get to {report.target:.0%}."
            if flat
            else needed.reason
        )
        return f"To be right {report.target:.0%} of the time: no estimate. {why}"
    return (
        f"To be right {report.target:.0%} of the time: about "
        f"{budget.stated(report.needed.estimate, report.level, ',.0f')} training images per class. {today}"
    )


def _gets_there(report: budget.BudgetReport) -> str:
    """Where the curve's own point reaches the target past the measured amounts, with the words
    that keep "levels off at 90.7%" from reading as "gets to 90%" in a room; empty otherwise."""
    point = report.needed.point
    if not reached_past(point, report.points[-1].images_per_class):
        return ""
    return (
        f"gets to {report.target:.0%} only at about {roughly(point)} images per class (its "
        f"{report.level:.0%} range there has no upper end) and "
    )


def backtest_words(backtest: Backtest, level: float) -> str:
    """How far the curve can be trusted on this data, as a room reads it."""
    if backtest.reason or not backtest.rows:
        why = backtest.reason or "Too few amounts of data are measured."
        return f"Not yet checked against this data's own measurements. {why}"
    inside, total = backtest.inside, len(backtest.rows)
    outside = total - inside
    verdict = (
        "the stated ranges held."
        if not outside
        else f"{'one' if outside == 1 else outside} fell outside: the true range is wider than stated."
    )
    return (
        f"Checked on this data: curves fitted on up to {per_class(backtest.fit_up_to)} images per class "
        f"predicted the {total} larger amounts we then measured within "
        f"{100 * backtest.mean_abs_error:.1f} percentage points on average; {inside} of {total} fell "
        f"inside their {level:.0%} range, so {verdict}"
    )


def curve_caption(report: budget.BudgetReport) -> str:
    """What the chart shows, naming only what is drawn on it: no fitted curve, no orange."""
    said = ["Blue: accuracy measured on images the models never saw, at each amount of training images."]
    said.append(
        "Orange: the curve fitted through them, with its range."
        if report.band
        else "No curve could be fitted through them, so there is no range to draw."
    )
    said.append("Dotted line: the target.")
    if report.standing:
        said.append("Green: the answer and its range.")
    if report.reliable_up_to:
        said.append("Grey: too far beyond what was measured to trust.")
    return " ".join(said)
