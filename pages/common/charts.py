"""Plotly figures for the pages: curves, holdout bars, confusion matrices, class counts."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.record import Metrics

PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Set2


def smooth(values: pd.Series, weight: float) -> pd.Series:
    """Exponential moving average, as TensorBoard smooths (0 = raw, 0.99 = very smooth)."""
    if weight <= 0:
        return values
    return values.ewm(alpha=1 - weight, adjust=True).mean()


def curves(series: dict[str, Metrics], metric: str, smoothing: float = 0.0) -> go.Figure:
    """Train (solid) and validation (dashed) ``metric`` per epoch, one colour per run; a legend
    click hides a run, a double click isolates it."""
    figure = go.Figure()
    for i, (label, metrics) in enumerate(series.items()):
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
                    hovertemplate=f"{label}<br>{stage} {metric} %{{y:.3f}}<extra></extra>",
                )
            )
    figure.update_layout(
        xaxis_title="epoch", yaxis_title=metric, height=420, legend={"font": {"size": 10}}, margin={"t": 30}
    )
    return figure


def holdout_bars(bars: pd.DataFrame, order: list[str]) -> go.Figure:
    """Holdout accuracy per slice, one bar per experiment, error bars = std over seeds."""
    figure = px.bar(
        bars,
        x="slice",
        y="accuracy",
        color="experiment",
        barmode="group",
        error_y="spread",
        category_orders={"slice": order},
        hover_data={"seeds": True, "n_train": ":.0f", "spread": ":.3f"},
        color_discrete_sequence=PALETTE,
        text_auto=".2f",
    )
    figure.update_layout(
        yaxis={"range": [0, 1], "title": "holdout accuracy"},
        height=440,
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 30},
    )
    figure.update_xaxes(type="category")  # else plotly reads "5%" as 5 and drops "1/class"
    figure.update_traces(textposition="inside", insidetextanchor="start")  # clear of error bars
    return figure


def confusion(matrix, classes) -> go.Figure:
    figure = px.imshow(
        [list(row) for row in matrix],
        x=list(classes),
        y=list(classes),
        text_auto=True,
        color_continuous_scale="Blues",
        labels={"x": "predicted", "y": "true", "color": "images"},
    )
    figure.update_layout(height=480, margin={"t": 30})
    return figure


def class_counts(counts: dict[str, int]) -> go.Figure:
    figure = px.bar(
        x=list(counts),
        y=list(counts.values()),
        labels={"x": "class", "y": "readable images"},
        color_discrete_sequence=PALETTE,
    )
    figure.update_layout(height=320, margin={"t": 20})
    return figure
