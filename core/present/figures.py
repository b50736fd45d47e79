"""Plotly figures for the pages and the HTML report: training curves, holdout bars, learning curves,
confusion matrices, class counts. Plain plotly, no Streamlit."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.answers.nextbatch.simulate import LEVEL
from core.base.intervals import share, wilson
from core.base.words import counted
from core.store.record import Metrics
from core.store.tables import short_names

if TYPE_CHECKING:  # a type only: the figures stay importable without the curve fitting
    from core.answers.budget import ClassPoint
    from core.answers.nextbatch.simulate import Simulation

PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Set2


def _count(n: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return f"{n:g}"


# 1, 2 and 5 times each power of ten, up to a million, labelled 1 2 5 10 20 50 ... 1k 2k: plotly's
# own log ticks label the minor ticks with their first digit only ("8 9 1 2 3 ... 10 2 3").
LOG_TICKS = [m * 10**e for e in range(7) for m in (1, 2, 5)]
LOG_AXIS = {"type": "log", "tickvals": LOG_TICKS, "ticktext": [_count(n) for n in LOG_TICKS]}


def smooth(values: pd.Series, weight: float) -> pd.Series:
    """Exponential moving average, as TensorBoard smooths (0 = raw, 0.99 = very smooth)."""
    if weight <= 0:
        return values
    return values.ewm(alpha=1 - weight, adjust=True).mean()


def curves(
    series: dict[str, Metrics], metric: str, smoothing: float = 0.0, hover: dict[str, str] | None = None
) -> go.Figure:
    """Train (solid) and validation (dashed) ``metric`` per epoch, one colour per run (legend:
    the short label; hover: ``hover``'s full one); a legend click hides a run, a double click
    isolates it. The legend sits under the plot, so the plot keeps its width."""
    figure = go.Figure()
    for i, (label, metrics) in enumerate(series.items()):
        full = (hover or {}).get(label, label)
        epochs = metrics.epochs
        colour = PALETTE[i % len(PALETTE)]
        for stage, dash in (("train", "solid"), ("val", "dash")):
            column = f"{stage}_{metric}"
            if column not in epochs or epochs.empty:
                continue
            figure.add_trace(
                go.Scatter(
                    x=epochs["epoch"] + 1,
                    y=smooth(epochs[column], smoothing),
                    mode="lines",
                    line={"color": colour, "dash": dash},
                    name=f"{label} ({stage})",
                    legendgroup=label,
                    hovertemplate=f"{full}<br>epoch %{{x}}: {stage} {metric} %{{y:.3f}}<extra></extra>",
                )
            )
    figure.update_layout(
        xaxis_title="epoch",
        yaxis_title=metric,
        height=460,
        margin={"t": 30, "l": 60},
        legend={"font": {"size": 11}, "orientation": "h", "y": -0.25},
    )
    longest = max((len(m.epochs) for m in series.values()), default=0)
    if longest <= 12:  # plotly would tick a short run at 1.5, 2.5: epochs are whole
        figure.update_xaxes(dtick=1)
    return figure


def _tick(label: str) -> str:
    """A slice's words as a tick no wider than "(100%)": the axis title says "per class", so the
    tick keeps the count ("~12" for "about 12") and a share goes to a second line; a slice set
    class by class says "(by class)" on two lines (on one it ran into its neighbours' shares
    with twenty slices at 1280 px)."""
    short = label.replace(" per class", "").replace("about ", "~")
    return short.replace("set class by class", "by<br>class").replace(" (", "<br>(")


def legend_names(experiments: list[str], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each experiment as a legend names it: by ``names`` (its words on a page a stakeholder
    reads; technical labels where none are given), cut to the parts that differ."""
    if names is None or len({names[e] for e in experiments}) < len(experiments):
        return short_names(experiments)
    cut = short_names([names[e] for e in experiments], sep=", ")
    return {e: cut[names[e]] for e in experiments}


def holdout_bars(bars: pd.DataFrame, order: list[str], names: Mapping[str, str] | None = None) -> go.Figure:
    """Holdout accuracy in percent per slice, one bar per experiment
    (:func:`core.store.tables.holdout_bars`); ``order`` lists the slices, fewest images per class
    first, and each is shown by its label in words on one horizontal line. Bars are pale enough
    for the black whiskers (the standard deviation over seeds) to show on every colour; grey: the
    95% interval of the finite holdout. Legends name only what differs between the experiments,
    in ``names``' words where given; hover gives everything."""
    legend = legend_names(sorted(bars["experiment"].unique()), names)
    words = dict(zip(bars["slice"], map(_tick, bars["label"]), strict=True))
    figure = go.Figure()
    for i, (experiment, rows) in enumerate(bars.groupby("experiment", sort=True)):
        rows = rows.set_index("slice").reindex([s for s in order if s in set(rows["slice"])]).reset_index()
        said, colour = (names or {}).get(experiment, experiment), PALETTE[i % len(PALETTE)]
        figure.add_traces(_experiment_bars(experiment, said, legend[experiment], rows, colour))
    figure.update_layout(
        barmode="group",
        yaxis={"range": [0, 1.05], "title": "holdout accuracy", "tickformat": ".0%"},
        height=460,
        legend={"orientation": "h", "y": -0.28, "title": {"text": "experiment"}},
        margin={"t": 30, "b": 90},
        bargap=0.25,
    )
    # categories, not numbers ("5%" is not 5), level and whole: a label never turns or is cut
    figure.update_xaxes(
        type="category",
        categoryorder="array",
        categoryarray=[words[s] for s in order if s in words],
        tickangle=0,
        automargin=True,
        title="training images per class",
    )
    return figure


def _experiment_bars(experiment: str, words: str, name: str, rows: pd.DataFrame, colour: str) -> list[go.Bar]:
    """One experiment's bars with the seeds' whiskers, and an invisible twin that carries the
    holdout's grey 95% whiskers (a bar has one error bar); ``words``: the experiment in full, for
    the hover, ``name``: in the legend."""
    pale, whisker = 0.45, "#111"  # pale bars: the seed whiskers drawn over them stay visible
    hover = [
        f"{words}<br>{r.label}: {r.accuracy:.0%} over {counted(r.seeds, 'seed')}, "
        f"spread {r.spread:.0%}<br>"
        f"holdout {int(r.n_holdout)} images: 95% interval {r.low:.0%} to {r.high:.0%}<br>"
        f"{r.n_train:,.0f} training images"
        for r in rows.itertuples()
    ]
    common = {
        "x": [_tick(label) for label in rows["label"]],
        "y": rows["accuracy"],
        "offsetgroup": experiment,
        "legendgroup": experiment,
    }
    seeds = {"type": "data", "array": rows["spread"], "color": whisker, "thickness": 2.5, "width": 4}
    holdout = {
        "type": "data",
        "symmetric": False,
        "array": rows["high"] - rows["accuracy"],
        "arrayminus": rows["accuracy"] - rows["low"],
        "color": "#9aa5b1",
        "thickness": 1.5,
        "width": 8,
    }
    return [
        go.Bar(
            **common,
            name=name,
            marker={"color": colour, "opacity": pale, "line": {"color": colour, "width": 1.5}},
            text=rows["accuracy"],
            texttemplate="%{text:.0%}",
            textposition="inside",
            insidetextanchor="start",
            textfont={"color": "#111"},
            hovertext=hover,
            hoverinfo="text",
            error_y=seeds,
        ),
        go.Bar(
            **common, showlegend=False, marker={"color": "rgba(0,0,0,0)"}, hoverinfo="skip", error_y=holdout
        ),
    ]


def plain(text: str) -> str:
    """A class name as Plotly shows it, its markup escaped: Plotly renders ``<b>`` in a label,
    so a class folder named "bag <b>" lost its tag and turned the axis bold."""
    return html.escape(text, quote=False)


def confusion(matrix, classes) -> go.Figure:
    figure = px.imshow(
        [list(row) for row in matrix],
        x=[plain(name) for name in classes],
        y=[plain(name) for name in classes],
        text_auto=True,
        color_continuous_scale="Blues",
        labels={"x": "predicted", "y": "true", "color": "images"},
    )
    figure.update_layout(height=480, margin={"t": 30})
    return figure


def class_counts(counts: dict[str, int]) -> go.Figure:
    figure = px.bar(
        x=[plain(name) for name in counts],
        y=list(counts.values()),
        labels={"x": "class", "y": "readable images"},
        color_discrete_sequence=PALETTE,
    )
    figure.update_layout(height=320, margin={"t": 20})
    return figure


def learning_curve(
    points,
    band: list[tuple[float, object]] | None = None,
    target: float | None = None,
    answer=None,
    level: float = 0.8,
    reliable_up_to: float | None = None,
) -> go.Figure:
    """Holdout accuracy against images per class on a log axis: measured means with their seed
    spreads (sample seeds as a shaded band, training seeds as error bars, told apart in the
    legend), the fitted curve's point and ``level`` interval beyond them, the target
    with the answer's interval, and beyond ``reliable_up_to`` a grey region marked unreliable.
    ``points`` are :class:`core.answers.budget.CurvePoint`; ``band`` pairs of (images per class,
    Estimate); ``answer`` an Estimate of images per class."""
    figure = go.Figure(data=[*_fitted_traces(band or [], level), *_measured_traces(points)])
    xs = [p.images_per_class for p in points]
    if target is not None:
        figure.add_hline(
            y=target,
            line={"dash": "dot", "color": "#444"},  # green is the answer's alone
            annotation_text=f"target {share(target)}",
            annotation_position="top left",
        )
    if answer is not None:
        figure.add_vrect(x0=answer.low, x1=answer.high, fillcolor="rgba(44,160,44,0.12)", line_width=0)
        figure.add_vline(x=answer.estimate, line={"color": "#2ca02c"})
    right = max(
        xs[-1] * 4,
        reliable_up_to * 2 if reliable_up_to else 0,
        answer.high * 1.3 if answer is not None and math.isfinite(answer.high) else 0,
    )
    if reliable_up_to:
        _shade_unreliable(figure, reliable_up_to, right)
    figure.update_xaxes(
        **LOG_AXIS, title="images per class (log scale)", range=[math.log10(xs[0]) - 0.1, math.log10(right)]
    )
    means = [p.accuracy for p in points]
    floor = min(min(means) - 0.1, target - 0.1 if target is not None else 1.0)
    figure.update_yaxes(title="holdout accuracy", range=[max(0.0, floor), 1.0], tickformat=".0%")
    figure.update_layout(height=460, margin={"t": 30}, legend={"orientation": "h", "y": -0.22})
    return figure


def _band(xs: list[float], lows: list[float], highs: list[float], fill: str, name: str) -> go.Scatter:
    """A shaded band from ``lows`` to ``highs`` over ``xs``: out along the top, back along the bottom."""
    return go.Scatter(
        x=xs + xs[::-1],
        y=highs + lows[::-1],
        mode="lines",  # Plotly's default adds markers to 20 points or fewer: corners read as data
        fill="toself",
        fillcolor=fill,
        line={"width": 0},
        hoverinfo="skip",
        name=name,
    )


def _fitted_traces(band: list[tuple[float, object]], level: float) -> list[go.Scatter]:
    """The fitted curves' ``level`` band and the answer's point through it (the power law's, see
    :func:`core.answers.curves.calibration.central`); none without a band."""
    if not band:
        return []
    ns = [n for n, _ in band]
    return [
        _band(
            ns,
            [e.low for _, e in band],
            [e.high for _, e in band],
            "rgba(255,127,14,0.18)",
            f"fitted curves, {level:.0%} interval",
        ),
        go.Scatter(
            x=ns,
            y=[e.estimate for _, e in band],
            mode="lines",
            line={"color": "#ff7f0e", "dash": "dash"},
            name="fitted curve (its point)",
            hovertemplate="%{x:,.0f} images/class: %{y:.1%}<extra>fitted</extra>",
        ),
    ]


def _measured_traces(points) -> list[go.Scatter]:
    """The measured means, the sample seeds' spread as a band around them, and the training
    seeds' spread as error bars where there is one."""
    xs = [p.images_per_class for p in points]
    means = [p.accuracy for p in points]
    sample = [p.sample_spread or 0.0 for p in points]
    together = any(p.together for p in points)
    label = "spread over seeds (sample and training together)" if together else "spread over sample seeds"
    seed_spread = [p.seed_spread or 0.0 for p in points]
    return [
        _band(
            xs,
            [m - s for m, s in zip(means, sample, strict=True)],
            [m + s for m, s in zip(means, sample, strict=True)],
            "rgba(31,119,180,0.18)",
            f"{label} (±1 sd)",
        ),
        go.Scatter(
            x=xs,
            y=means,
            mode="lines+markers",
            line={"color": "#1f77b4"},
            name="measured; error bars: spread over training seeds"
            if any(seed_spread)
            else "measured (mean over runs)",
            error_y={"type": "data", "array": seed_spread, "visible": any(seed_spread), "color": "#1f77b4"},
            customdata=[[p.slice, p.runs] for p in points],
            hovertemplate="%{customdata[0]}: %{x:,.1f} images/class<br>accuracy %{y:.1%} over "
            "%{customdata[1]} runs<extra></extra>",
        ),
    ]


def _shade_unreliable(figure: go.Figure, reliable_up_to: float, right: float) -> None:
    figure.add_vrect(x0=reliable_up_to, x1=right * 10, fillcolor="rgba(120,120,120,0.22)", line_width=0)
    figure.add_annotation(
        x=math.log10(reliable_up_to),  # a log axis places annotations by the exponent
        y=0.02,
        yref="paper",
        text="unreliable beyond here",
        showarrow=False,
        xanchor="right",
        font={"color": "#52606d"},
    )


def per_class_curves(curves: Mapping[str, Sequence[ClassPoint]]) -> go.Figure:
    """Each class's holdout recall against its own training images (means over runs), in percent,
    with its interval as whiskers: a class's recall rests on its few holdout images, so the reader
    must see how far apart two points have to be to differ."""
    figure = go.Figure()
    for i, (folder, points) in enumerate(sorted(curves.items())):
        points, name = sorted(points, key=lambda p: p.n), plain(folder)
        figure.add_trace(
            go.Scatter(
                x=[p.n for p in points],
                y=[p.recall.estimate for p in points],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [p.recall.high - p.recall.estimate for p in points],
                    "arrayminus": [p.recall.estimate - p.recall.low for p in points],
                    "thickness": 1,
                },
                customdata=[[p.recall.low, p.recall.high] for p in points],
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate=f"{name}: %{{x:,.0f}} images, recall %{{y:.0%}} "
                "(%{customdata[0]:.0%} to %{customdata[1]:.0%})<extra></extra>",
            )
        )
    figure.update_xaxes(**LOG_AXIS, title="training images of the class (log scale)")
    figure.update_yaxes(title="holdout recall of the class", range=[0, 1.02], tickformat=".0%")
    figure.update_layout(height=420, margin={"t": 30})
    return figure


def _bins_as_trained(before) -> go.Bar:
    """One bar per non-empty bin as trained, its image count on it and its 95% interval as whiskers."""
    intervals = [wilson(round(b.accuracy * b.count), b.count) for b in before]
    bars = list(zip(before, intervals, strict=True))
    return go.Bar(
        x=[(b.low + b.high) / 2 for b in before],
        y=[b.accuracy for b in before],
        width=[(b.high - b.low) * 0.92 for b in before],
        name="as trained (whiskers: 95% interval of the bin's images)",
        marker_color="#1f77b4",
        opacity=0.8,
        text=[f"{b.count}" for b in before],
        textposition="inside",
        insidetextanchor="start",
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [i.high - b.accuracy for b, i in bars],
            "arrayminus": [b.accuracy - i.low for b, i in bars],
            "color": "#444444",
            "thickness": 1,
        },
        customdata=[[b.confidence, b.count, i.low, i.high] for b, i in bars],
        hovertemplate="mean confidence %{customdata[0]:.0%}<br>accuracy %{y:.0%} (%{customdata[2]:.0%} "
        "to %{customdata[3]:.0%})<br>%{customdata[1]} images<extra>as trained</extra>",
    )


def reliability(before, after) -> go.Figure:
    """Reliability diagram in percent: accuracy against confidence per bin as trained (bars, one
    per non-empty bin, its image count on it) and after rescaling (markers at each bin's mean
    confidence); the diagonal is a calibrated model. ``before``/``after``:
    :class:`core.answers.calibration.Bin`."""
    figure = go.Figure()
    figure.add_trace(_bins_as_trained(before))
    figure.add_trace(
        go.Scatter(
            x=[b.confidence for b in after],
            y=[b.accuracy for b in after],
            mode="lines+markers",
            marker={"size": [6 + 14 * (b.count / max(1, max(a.count for a in after))) ** 0.5 for b in after]},
            name="after rescaling",
            line={"color": "#ff7f0e"},
            customdata=[b.count for b in after],
            hovertemplate="mean confidence %{x:.0%}<br>accuracy %{y:.0%}<br>%{customdata} images"
            "<extra>after rescaling</extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#7f7f7f"},
            name="perfectly calibrated",
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        height=420,
        margin={"t": 30},
        legend={"orientation": "h", "y": -0.2},
        xaxis={"title": "how sure the model is (its top class)", "range": [0, 1], "tickformat": ".0%"},
        yaxis={"title": "how often it is right, in the bin", "range": [0, 1.08], "tickformat": ".0%"},
    )
    return figure


def trust_by_size(points, target: float) -> go.Figure:
    """Calibration error before and after rescaling, and the share automated at ``target``,
    against images per class, in percent with the holdout's 95% intervals as error bars
    (``points`` are :class:`core.answers.trust.SizePoint`). The log axis is ticked at 1, 2, 5, 10,
    20, ... only: plotly's default labels its minor ticks too ("8 9 1 2 3 ... 10 2 3")."""
    from plotly.subplots import make_subplots

    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("calibration error", f"share it decides alone at {target:.0%} accuracy"),
    )
    xs = [p.images_per_class for p in points]
    automated = [p.automated_interval or (math.nan, math.nan) for p in points]
    lines = (
        ("error as trained", [p.ece for p in points], [p.ece_interval for p in points], "#1f77b4", 1),
        (
            "error after rescaling",
            [p.ece_scaled for p in points],
            [p.ece_scaled_interval for p in points],
            "#ff7f0e",
            1,
        ),
        ("share decided alone", [p.automated_share for p in points], automated, "#2ca02c", 2),
    )
    for name, ys, bounds, color, col in lines:
        whiskers = None
        if bounds is not None:
            known = [math.nan if y is None else y for y in ys]
            whiskers = {
                "type": "data",
                "symmetric": False,
                "array": [high - y for y, (_, high) in zip(known, bounds, strict=True)],
                "arrayminus": [y - low for y, (low, _) in zip(known, bounds, strict=True)],
                "color": color,
                "thickness": 1,
            }
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=name,
                mode="lines+markers",
                line={"color": color},
                connectgaps=False,
                error_y=whiskers,
                hovertemplate="%{x:,.1f} images per class: %{y:.0%}<extra>" + name + "</extra>",
            ),
            row=1,
            col=col,
        )
    span = [math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1]  # the same on both panels
    figure.update_xaxes(**LOG_AXIS, range=span, title="images per class (log scale)")
    figure.update_yaxes(rangemode="tozero", tickformat=".0%", row=1, col=1)
    figure.update_yaxes(range=[0, 1], tickformat=".0%", row=1, col=2)
    figure.update_layout(height=380, margin={"t": 40}, legend={"orientation": "h", "y": -0.3})
    return figure


def policy_heatmap(grid: pd.DataFrame) -> go.Figure:
    """Holdout accuracy by augmentation policy and slice (:func:`core.store.tables.policy_grid`)."""
    figure = px.imshow(
        grid.values,
        x=list(grid.columns),
        y=list(grid.index),
        text_auto=".2f",
        aspect="auto",
        color_continuous_scale="Viridis",
        labels={"x": "slice", "y": "augmentation", "color": "accuracy"},
    )
    figure.update_xaxes(type="category")
    figure.update_layout(height=120 + 45 * len(grid.index), margin={"t": 20})
    return figure


def _translucent(colour: str, alpha: float) -> str:
    """A ``#rrggbb`` colour as ``rgba(...)`` with ``alpha``: a band in its line's colour."""
    red, green, blue = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"


def next_batch_backtest(simulation: Simulation) -> go.Figure:
    """Holdout accuracy in percent against the labels spent, one line per strategy (random
    first, grey dashes: the baseline) with its interval over seeds as a band in its colour; no
    band with one seed, which has no spread. A linear axis: the rounds add labels evenly."""

    figure = go.Figure()
    for i, curve in enumerate(simulation.curves):
        points = curve.rounds()
        labels = [p.labels for p in points]
        baseline = curve is simulation.random
        colour = "#7f7f7f" if baseline else PALETTE[i % len(PALETTE)]
        if all(math.isfinite(p.low) and math.isfinite(p.high) for p in points):
            band = _band(
                labels,
                [p.low for p in points],
                [p.high for p in points],
                _translucent(colour, 0.15),
                curve.strategy,
            )
            figure.add_trace(band.update(legendgroup=curve.strategy, showlegend=False))
        figure.add_trace(
            go.Scatter(
                x=labels,
                y=[p.accuracy for p in points],
                customdata=[[p.low, p.high] for p in points],
                mode="lines+markers",
                name=curve.strategy,
                legendgroup=curve.strategy,
                line={"color": colour, "dash": "dash" if baseline else "solid"},
                hovertemplate=f"{curve.strategy}: %{{x:,}} labels, accuracy %{{y:.1%}} "
                "(%{customdata[0]:.1%} to %{customdata[1]:.1%})<extra></extra>",
            )
        )
    figure.update_xaxes(title="labels spent (all classes)")
    figure.update_yaxes(title=f"holdout accuracy (bands: {LEVEL:.0%} interval over seeds)", tickformat=".0%")
    figure.update_layout(height=420, margin={"t": 30}, legend={"orientation": "h", "y": -0.22})
    return figure
