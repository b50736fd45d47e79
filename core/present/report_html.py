"""One self-contained HTML report of an experiment on a dataset, for people without the tool.

It opens offline in any browser and asks nothing of the network: plotly's JavaScript is inlined
once, the Grad-CAM examples are embedded as data URIs, and no font, style or script is linked.
It shows the dataset, the learning curve with its extrapolation and backtest, the budget answer
for a target, the holdout bars over seeds, the argmax-against-threshold table, and a few CAMs of
the largest slice's mistakes. It reads cached runs; CAMs are computed once and cached.

It also prints: each part is a ``<section>`` that starts a new page, charts and table rows are
never split across pages, Plotly's mode bar and hover labels are left off the paper, and before
printing the charts are drawn at the printed page's width (a chart drawn for a wide screen would
run off the page). :mod:`core.present.report_pdf` prints it to PDF with Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np
from PIL import Image

from core.answers import budget
from core.answers.cam import gallery, pair_overlays, showcase_run
from core.base.errors import ReadOnly, UserError
from core.base.intervals import share
from core.base.paths import write_atomic
from core.data.splits import make_splits
from core.present import figures
from core.store import runs
from core.store.config import DEFAULT_SPLIT, Split
from core.store.tables import (
    bars_explained,
    holdout_bars,
    plain_experiment,
    runs_frame,
    slice_order,
    threshold_display,
    threshold_explained,
    threshold_rows,
)

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1f2933;line-height:1.45}
h1{margin-bottom:.2em} .lead{font-size:1.15em} .answer{font-size:1.3em;background:#eef7ee;padding:.6em .9em;
border-left:5px solid #2ca02c} table{border-collapse:collapse;margin:1em 0;font-size:.92em}
td,th{border:1px solid #d5dbe1;padding:.3em .6em;text-align:right} th{background:#f3f5f7}
td:first-child,th:first-child{text-align:left}
.cams{display:grid;grid-template-columns:repeat(3,minmax(0,260px));gap:.6em}
.cams figure{margin:0} .cams img{width:100%;image-rendering:pixelated} figcaption{font-size:.85em}
.small{color:#52606d;font-size:.88em}
.caveat{background:#fff7e6;border-left:5px solid #e8a33d;padding:.5em .9em}
"""

# The printed page: A4 with 15 mm margins leaves 180 mm, which Chromium lays out at 96 px per inch.
# Every section but the first starts a page ("section + section" would miss the one after the
# measuring <svg> Plotly appends to the body while the page is still loading).
PAGE_SIZE, PAGE_WIDTH_MM, MARGIN_MM = "A4", 210, 15
PRINT_WIDTH_PX = int((PAGE_WIDTH_MM - 2 * MARGIN_MM) / 25.4 * 96)

PRINT_STYLE = f"""
@page{{size:{PAGE_SIZE};margin:{MARGIN_MM}mm}}
@media print{{
*{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
body{{max-width:none;margin:0;padding:0;font-size:10pt}}
section:not(:first-of-type){{break-before:page}}
h1,h2,h3{{break-after:avoid}}
.plotly-graph-div,figure,tr,.answer,.caveat{{break-inside:avoid}}
.modebar-container,.hoverlayer{{display:none!important}}
.cams{{grid-template-columns:repeat(3,40mm)}} figcaption{{font-size:7.5pt}}
}}
"""

# Charts are drawn for the screen's width: before printing (Ctrl+P, or report_pdf, which calls
# hmdFitForPrint itself) each is redrawn at the page's width, and after it back at the window's.
PRINT_SCRIPT = f"""
function hmdFitCharts(width){{
  return Promise.all([...document.querySelectorAll('.js-plotly-plot')].map(
    chart => Plotly.relayout(chart, {{width: width, autosize: width === null}})));
}}
window.hmdFitForPrint = () => hmdFitCharts({PRINT_WIDTH_PX});
window.addEventListener('beforeprint', window.hmdFitForPrint);
window.addEventListener('afterprint', () => hmdFitCharts(null));
"""


def write_report(
    cache_dir: Path, data: str | Path, out: Path, target: float | None = None, experiment: str | None = None
) -> Path:
    """Write :func:`render` to ``out`` (atomically) and return its path.

    Raises:
        UserError: as :func:`render`, or ``out`` is a folder.
    """
    out = Path(out).expanduser()
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the path of the .html file to write")
    write_atomic(out, render(cache_dir, data, target, experiment).encode())
    return out


def render(
    cache_dir: Path,
    data: str | Path,
    target: float | None = None,
    experiment: str | None = None,
    split: Split = DEFAULT_SPLIT,
    examples: int = 4,
) -> str:
    """The report of ``experiment`` on ``data`` as one HTML page.

    Raises:
        UserError: no runs for the dataset, too few slices, or a target outside (0, 1).
    """
    selection = budget.select(cache_dir, data, experiment, *split)
    analysis = budget.analyse(selection)
    report = budget.report(analysis, analysis.suggested_target() if target is None else target)
    footer = (
        f'<p class="small">Made by How Much Data? on {time.strftime("%Y-%m-%d %H:%M")} from '
        f"{len(selection.summaries)} cached runs. Every number comes from those runs. "
        f"{budget.intervals_explained(report.band, report.level)}</p>"
    )
    sections = [
        _header(selection, report),
        _learning_curve(report),
        *_bars_and_thresholds(selection, cache_dir),
        _mistakes(selection, cache_dir, examples) + footer,
    ]
    body = "\n".join(f"<section>{section}</section>" for section in sections)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>How much data? "
        f"{html.escape(selection.dataset.root.name)}</title><style>{STYLE}{PRINT_STYLE}</style>"
        f"<script>{_plotly_js()}</script><script>{PRINT_SCRIPT}</script></head><body>{body}</body></html>"
    )


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _figure(figure) -> str:
    return figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _header(selection: budget.Selection, report: budget.BudgetReport) -> str:
    dataset = selection.dataset
    config = selection.summaries[0].config
    splits = make_splits(dataset.labels, dataset.classes, *config.split)
    counts = ", ".join(f"{html.escape(name)} {n}" for name, n in dataset.counts().items())
    return (
        f"<h1>How much data does {html.escape(dataset.root.name)} need?</h1>"
        f'<p class="lead">{len(dataset):,} labelled images in {len(dataset.classes)} classes ({counts}). '
        f"Every run is scored on the same fixed holdout of {len(splits.holdout):,} images; "
        f"{len(splits.val):,} more validate, {splits.pool_size():,} form the training pool.</p>"
        f'<p class="small">Experiment: {html.escape(plain_experiment(config))} '
        f"(technical name: {html.escape(selection.experiment)})</p>"
        f'<p class="{"answer" if report.standing else "caveat"}">'
        f"{html.escape(_answer_sentence(report))}</p>"
        + "".join(f'<p class="caveat">{html.escape(line)}</p>' for line in budget.caveats(report))
    )


def _answer_sentence(report: budget.BudgetReport) -> str:
    needed = report.needed
    if report.contradicted:
        return report.contradicted
    if needed.estimate:
        return (
            f"To reach a holdout accuracy of {share(report.target)}: about "
            f"{budget.stated(needed.estimate, report.level, ',.0f')} images per class."
        )
    return f"A holdout accuracy of {share(report.target)}: no estimate. {needed.reason}"


def _learning_curve(report: budget.BudgetReport) -> str:
    figure = figures.learning_curve(
        report.points, report.band, report.target, report.standing, report.level, report.reliable_up_to
    )
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in astuple(line)) + "</tr>"
        for line in budget.backtest_lines(report.backtest)
    )
    table = (
        "<table><thead><tr><th>images per class</th><th>measured</th><th>predicted</th>"
        f"<th>{report.level:.0%} interval</th><th>inside</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    return (
        f"<h2>Learning curve</h2>{_figure(figure)}<h3>Backtest on this data</h3>"
        f"<p>{html.escape(budget.backtest_sentence(report.backtest, report.level))}</p>{table}"
    )


def _bars_and_thresholds(selection: budget.Selection, cache_dir: Path) -> tuple[str, str]:
    """The Holdout page's chart and table, with the page's own captions: two sections."""
    frame = runs_frame(list(selection.summaries))
    bars = holdout_bars(frame)
    n_holdout = int(bars["n_holdout"].iloc[0])
    predictions = {rid: runs.load(cache_dir, rid).predictions() for rid in frame.run_id}
    cells = threshold_display(threshold_rows(frame, predictions, 0.8), None)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in cells
    )
    names = {selection.experiment: plain_experiment(selection.summaries[0].config)}
    chart = _figure(figures.holdout_bars(bars, slice_order(frame), names))
    return (
        f"<h2>Holdout accuracy by amount of training data</h2>{chart}"
        f"<p class=small>{html.escape(bars_explained(n_holdout))}</p>",
        "<h2>How often it is right, and how often it is sure</h2><table>"
        f"<thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"
        f"<p class=small>{html.escape(threshold_explained(n_holdout))}</p>",
    )


def _mistakes(selection: budget.Selection, cache_dir: Path, examples: int) -> str:
    largest = showcase_run(selection.summaries)
    wrong = gallery(cache_dir, largest.run_id, "misclassified").head(examples)
    if wrong.empty:
        return "<h2>Mistakes</h2><p>The largest slice's run made no mistake on the holdout.</p>"
    try:
        pairs = pair_overlays(cache_dir, largest.run_id, wrong)
    except ReadOnly as error:  # a viewer's report: the maps not drawn yet are left out, said why
        why = html.escape(str(error))
        return f"<h2>Mistakes</h2><p>The maps of where it looked are not drawn yet ({why}).</p>"
    pixels = runs.load(cache_dir, largest.run_id).images()
    figures_html = []
    for row, (predicted, true) in zip(wrong.itertuples(), pairs, strict=True):
        cells = [
            (_data_uri(pixels[int(row.image_index)]), f"{html.escape(str(row.path))}: {row.true}"),
            (
                _data_uri(np.asarray(Image.open(predicted))),
                f"where it looked for '{row.pred}' (predicted, {row.p_max:.0%} sure)",
            ),
            (_data_uri(np.asarray(Image.open(true))), f"where it would look for '{row.true}' (true)"),
        ]
        figures_html += [
            f'<figure><img src="{uri}" alt=""><figcaption>{html.escape(caption)}</figcaption></figure>'
            for uri, caption in cells
        ]
    return (
        f"<h2>Where the model looked on its mistakes</h2><p>Grad-CAM of the {largest.config.slice} run "
        "(red: evidence for the class; blue: none).</p>"
        f'<div class="cams">{"".join(figures_html)}</div>'
    )


def _data_uri(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
