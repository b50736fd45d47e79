"""Tables behind the dashboard's charts and the CLI's listings: runs as rows, grouped over seeds,
thresholds at any t.

Plain pandas over typed run summaries and predictions, so the pages only lay things out and
every number they show comes from :mod:`core.store.evaluate`. Each quantity has one column name
everywhere (the pages, the CLI, the exports): see :data:`COLUMNS`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.base.errors import UserError, check_choice
from core.base.intervals import Estimate, wilson
from core.data.splits import HOLDOUT_SHARE, VAL_SHARE, SliceSpec
from core.models.backbones import get_spec
from core.store.config import RunConfig
from core.store.evaluate import THRESHOLDS
from core.store.record import Predictions, Summary

FILTERS = ("dataset", "slice", "backbone", "mode", "aug", "seed")


def p_true_column(t: float) -> str:
    """The article's reading at t: share of images whose true class gets more than t."""
    return f"P(true)>{t:g}"


def coverage_column(t: float) -> str:
    """Share of images whose top probability is at least t."""
    return f"coverage@{t:g}"


COLUMNS = [
    "run_id",
    "dataset",
    "fingerprint",
    "data",
    "experiment",
    "backbone",
    "mode",
    "aug",
    "slice",
    "slice_order",
    "seed",
    "sample_seed",
    "epochs",
    "image_size",
    "n_train",
    "images_per_class",
    "accuracy",
    *[p_true_column(t) for t in THRESHOLDS],
    coverage_column(THRESHOLDS[-1]),
    "n_holdout",
    "train_seconds",
    "device",
    "finished",
]


def experiment_label(config: RunConfig) -> str:
    """Everything a run is compared on besides its slice and seeds. Runs that differ in any of
    it (a hyper-parameter too) are different experiments, never averaged together as seeds."""
    if config.solver == "lbfgs":  # to convergence: epochs, batch size and step do not change the result
        return f"{config.backbone} · {config.mode} · aug {config.aug} · L-BFGS · {config.image_size} px"
    return (
        f"{config.backbone} · {config.mode} · aug {config.aug} · {config.epochs} ep · "
        f"{config.image_size} px · bs {config.batch_size} · lr {config.lr:g}"
    )


MODES_IN_WORDS = {
    "frozen": "backbone frozen, a new head trained",
    "finetune": "backbone fine-tuned",
    "scratch": "trained from scratch",
}


def backbone_words(name: str) -> str:
    """A backbone as people name it ("EfficientNet-Lite0"), or its registry name when this version
    no longer registers it."""
    try:
        return get_spec(name).description.split(" (")[0].split(",")[0]
    except UserError:
        return name


def plain_experiment(config: RunConfig) -> str:
    """An experiment in words a stakeholder reads ("EfficientNet-Lite0, backbone frozen, a new
    head trained, no augmentation, 224 px images"); :func:`experiment_label` is its technical
    name, which pages keep one click away."""
    backbone = backbone_words(config.backbone)
    augmentation = "no augmentation" if config.aug == "none" else f"{config.aug} augmentation"
    mode = MODES_IN_WORDS.get(config.mode, config.mode)
    words = f"{backbone}, {mode}, {augmentation}, {config.image_size} px images"
    if config.solver != "lbfgs":
        words += f", {config.epochs} epochs at learning rate {config.lr:g} (batches of {config.batch_size})"
    return words


def match_experiment(wanted: str, labels: tuple[str, ...]) -> str:
    """The experiment ``wanted`` names: its label, or a part of it that only one label holds.

    Raises:
        UserError: it names none or several (the message lists them).
    """
    if wanted in labels:
        return wanted
    found = [label for label in labels if wanted.lower() in label.lower()]
    if len(found) != 1:
        if found:
            said = f"matches {len(found)} of the experiments on this dataset: " + "; ".join(found)
        else:
            said = "matches none of the experiments on this dataset: " + "; ".join(labels)
        raise UserError(f"--experiment '{wanted}' {said}")
    return found[0]


def dataset_label(config: RunConfig, fingerprint: str, with_hash: bool = False) -> str:
    """What a run is scored on, for people: the folder's name, its content's short hash where
    another dataset of the same name is shown beside it (a copy with other images, or the folder
    before images were added), and its holdout split where it is not the default one. Runs with
    different labels saw different holdouts."""
    label = Path(config.data).name + (f" · {fingerprint[:6]}" if with_hash else "")
    split = config.split
    if split != (HOLDOUT_SHARE, VAL_SHARE, 0):
        label += f" · holdout {split[0]:g}, val {split[1]:g}, split seed {split[2]}"
    return label


def run_row(summary: Summary) -> dict:
    """One run as a row of :data:`COLUMNS`."""
    c, scores = summary.config, summary.holdout
    last = scores.at(THRESHOLDS[-1])
    per_class = summary.n_train / max(1, len(summary.classes))
    return {
        "run_id": summary.run_id,
        "dataset": dataset_label(c, summary.info.fingerprint),
        "fingerprint": summary.info.fingerprint,
        "data": c.data,
        "experiment": experiment_label(c),
        "backbone": c.backbone,
        "mode": c.mode,
        "aug": c.aug,
        "slice": c.slice,
        # by the images each class got, so that a slice set class by class or as a share sits
        # among the counts it lies between, and "the largest" is the one with the most images
        "slice_order": (per_class, *SliceSpec.parse(c.slice).sort_key()),
        "seed": c.seed,
        "sample_seed": c.sample_seed,
        "epochs": c.epochs,
        "image_size": c.image_size,
        "n_train": summary.n_train,
        "images_per_class": per_class,
        "accuracy": scores.accuracy,
        **{p_true_column(t): scores.at(t).threshold_accuracy for t in THRESHOLDS},
        coverage_column(last.threshold): last.coverage,
        "n_holdout": summary.n_holdout,
        "train_seconds": summary.train_seconds,
        "device": summary.device,
        "finished": summary.finished,
    }


def runs_frame(summaries: list[Summary]) -> pd.DataFrame:
    """One row per run, in the order given, with the columns the pages filter, group and sort on.
    Datasets are named by folder; two different datasets of one name get their short hashes."""
    frame = pd.DataFrame([run_row(s) for s in summaries], columns=COLUMNS)
    if frame.empty:
        return frame
    shared = frame.groupby("dataset")["fingerprint"].transform("nunique") > 1
    if shared.any():
        frame.loc[shared, "dataset"] = [
            dataset_label(s.config, s.info.fingerprint, with_hash=True)
            for s, flag in zip(summaries, shared, strict=True)
            if flag
        ]
    return frame


def picker_labels(frame: pd.DataFrame, technical: bool = False) -> dict[str, str]:
    """How a page names each run in a picker, newest first as ``frame`` is: what tells runs
    apart first (the slice, the seeds, the accuracy), then, where the dataset has several, the
    experiment. In words by default; with ``technical``, the experiment's label and the run id."""
    several = frame["experiment"].nunique() > 1
    short = short_names(sorted(frame["experiment"].unique()))
    labels = {}
    for r in frame.itertuples():
        if technical:
            labels[r.run_id] = (
                f"{r.slice} · seed {r.seed} · acc {r.accuracy:.3f} · {r.experiment} [{r.run_id}]"
            )
            continue
        sample = f", sample {r.sample_seed}" if r.sample_seed not in (None, r.seed) else ""
        experiment = f" · {short[r.experiment]}" if several else ""
        right = f"{r.accuracy:.1%} right on the holdout"
        labels[r.run_id] = (
            f"{slice_words(r.slice, r.images_per_class)}, seed {r.seed}{sample} · {right}{experiment}"
        )
    return labels


def slice_order(frame: pd.DataFrame) -> list[str]:
    """The slices present, fewest images per class first (1/class, 3/class, 5%, ..., 100%)."""
    ordered = frame.drop_duplicates("slice").sort_values("slice_order")
    return ordered["slice"].tolist()


def slice_words(text: str, images_per_class: float) -> str:
    """A slice as a person reads it, always as images per class: "30 per class", "about 12 per
    class (5%)", "30 per class (set class by class)". One form for every kind, so that a chart
    of mixed slices reads as one axis of amounts."""
    spec = SliceSpec.parse(text)
    if spec.per_class is not None:
        return f"{spec.per_class} per class"
    counts = {count for _, count in spec.counts}
    if len(counts) == 1 and "*" not in dict(spec.counts):
        return f"{counts.pop()} per class (set class by class)"
    amount = f"{'about ' * (images_per_class != round(images_per_class))}{images_per_class:,.0f} per class"
    return f"{amount} ({spec.percent:g}%)" if spec.percent is not None else f"{amount} (set class by class)"


def percent(value: Estimate, digits: int = 0) -> str:
    """A share and its interval in one cell, as the pages print them: "91% (62% to 98%)"."""
    if math.isnan(value.estimate):
        return "none"
    return f"{value.estimate:.{digits}%} ({value.low:.{digits}%} to {value.high:.{digits}%})"


def bars_explained(n_holdout: int) -> str:
    """What the holdout chart's bars and whiskers are: the page and the report say the same."""
    return (
        "Bars: means over seeds, in percent. Black whiskers: how far the result moves between seeds "
        "(which images were labelled, how training started). Grey whiskers: the 95% interval of the "
        f"holdout itself, {n_holdout:,} images: another holdout of that size could move a bar that far."
    )


def threshold_explained(n_holdout: int) -> str:
    """What the threshold table's cells are: the page and the report say the same."""
    return (
        f"Each cell: the share over the {n_holdout:,} holdout images (pooled over seeds), then its 95% "
        "interval (Wilson) in brackets; the accuracy of those decided alone rests only on them, so few "
        "images give a wide interval. Accuracy: the model's top class is the right one. Right and over N% "
        "sure: the original article's reading, where an image counts only if the right class gets more "
        "than that. Decided alone: its top class gets at least the confidence asked for. Confidence "
        "depends on the training recipe as well as on the data: the penalty on the classifier's weights "
        "is what keeps a 1-image-per-class model from "
        "being sure about most images."
    )


def threshold_display(rows: list[ThresholdRow], experiments: Mapping[str, str] | None) -> list[dict]:
    """The threshold table as the page and the report print it, one dict of cells per row;
    ``experiments`` names each experiment in a first column (None: one experiment, no column)."""
    return [
        {
            **({"experiment": experiments[r.experiment]} if experiments else {}),
            "training data": r.label,
            "seeds": r.seeds,
            "accuracy": percent(r.accuracy),
            **{f"right and over {u:.0%} sure": percent(e) for u, e in r.true_above},
            f"decided alone (at least {r.threshold:.0%} sure)": percent(r.coverage),
            "accuracy of those decided alone": percent(r.selective),
            "images decided alone": _kept_said(r),
        }
        for r in rows
    ]


def holdout_images(bars: pd.DataFrame) -> int:
    """The holdout's image count the bars rest on (a variant's own: fewer once some are left out)."""
    return int(bars["n_holdout"].iloc[0])


def listed_runs(frame: pd.DataFrame, experiment_names: Mapping[str, str], technical: bool) -> pd.DataFrame:
    """The run table as the Experiments page lists it: bookkeeping columns hidden (the ids too,
    unless technical names are asked for), each experiment by its name."""
    hidden = ["slice_order", "data", "finished"] + ([] if technical else ["run_id", "fingerprint"])
    return frame.drop(columns=hidden).assign(experiment=frame["experiment"].map(experiment_names))


def _kept_said(row: ThresholdRow) -> str:
    """The count the coverage share is of, over every seed's holdout: "1 of 180 over 3 runs"
    reads with "1%", where a per-run mean rounded to "0 of 60" contradicted it."""
    said = f"{row.kept:,} of {row.scored:,}"
    return f"{said} over {row.seeds} runs" if row.seeds > 1 else said


def holdout_bars(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean holdout accuracy per experiment and slice, with two different spreads: ``spread``,
    the standard deviation over seeds (how much the result moves with which images were labelled
    and how training started), and ``low``/``high``, the 95% Wilson interval of the finite
    holdout itself (how much it would move on another holdout of the same size). ``label`` names
    the slice in words (:func:`slice_words`); rows run from the fewest images per class."""
    grouped = frame.groupby(["dataset", "experiment", "slice"], as_index=False).agg(
        accuracy=("accuracy", "mean"),
        spread=("accuracy", "std"),
        seeds=("seed", "nunique"),
        runs=("run_id", "size"),
        n_train=("n_train", "mean"),
        images_per_class=("images_per_class", "mean"),
        n_holdout=("n_holdout", "first"),
        slice_order=("slice_order", "first"),
    )
    grouped["spread"] = grouped["spread"].fillna(0.0)
    bounds = [wilson(a * n, int(n)) for a, n in zip(grouped["accuracy"], grouped["n_holdout"], strict=True)]
    grouped["low"] = [b.low for b in bounds]
    grouped["high"] = [b.high for b in bounds]
    grouped["label"] = [
        slice_words(text, n) for text, n in zip(grouped["slice"], grouped["images_per_class"], strict=True)
    ]
    return grouped.sort_values(["slice_order", "accuracy"], ascending=[True, False])


@dataclass(frozen=True)
class ThresholdRow:
    """One experiment's slice in the threshold table: shares over its seeds' holdout images,
    each with the Wilson interval of as many images as one run is scored on (the seeds score the
    same holdout, so they do not multiply it)."""

    experiment: str
    slice: str
    label: str  # the slice in words (:func:`slice_words`)
    seeds: int
    accuracy: Estimate  # the top class is the true one
    true_above: tuple[tuple[float, Estimate], ...]  # (u, share whose true class gets more than u)
    threshold: float  # t: how sure the model must be
    coverage: Estimate  # share of images whose top probability is at least t
    selective: Estimate  # accuracy on those alone; its interval rests on the images kept
    kept: int  # images at least t sure, summed over seeds
    scored: int  # images scored, summed over seeds: the count the shares are of


def _pooled(successes: list[int], totals: list[int]) -> Estimate:
    """The share over runs (pooled counts) with the Wilson interval of one run's mean count."""
    total = sum(totals)
    if not total:
        return wilson(0, 0)
    share, n = sum(successes) / total, max(1, round(total / len(totals)))
    bounds = wilson(share * n, n)
    return Estimate(share, bounds.low, bounds.high)


def threshold_rows(frame: pd.DataFrame, predictions: dict[str, Predictions], t: float) -> list[ThresholdRow]:
    """The article's top-class-against-threshold table per experiment and slice, with ``t``'s
    coverage and selective accuracy, every share with its interval: a selective accuracy of 1.0
    on 22 kept images is not one on 200. ``predictions`` maps the frame's run ids to their
    holdout predictions; rows by experiment, then fewest images per class first."""
    cuts = tuple(dict.fromkeys((*THRESHOLDS, t)))
    rows = []
    for (experiment, text), runs_of in frame.groupby(["experiment", "slice"]):
        counts: dict[str, list[int]] = {"n": [], "right": [], "kept": [], "kept_right": []}
        above: dict[float, list[int]] = {u: [] for u in cuts}
        for run_id in runs_of["run_id"]:
            p = predictions[run_id]
            true_p, top = p.probs[np.arange(len(p.labels)), p.labels], p.probs.argmax(1)
            kept = p.probs.max(1) >= t
            for key, value in (
                ("n", len(p.labels)),
                ("right", np.sum(top == p.labels)),
                ("kept", np.sum(kept)),
                ("kept_right", np.sum(kept & (top == p.labels))),
            ):
                counts[key].append(int(value))
            for u in cuts:
                above[u].append(int(np.sum(true_p > u)))
        rows.append(
            ThresholdRow(
                experiment=experiment,
                slice=text,
                label=slice_words(text, float(runs_of["images_per_class"].mean())),
                seeds=len(runs_of),
                accuracy=_pooled(counts["right"], counts["n"]),
                true_above=tuple((u, _pooled(above[u], counts["n"])) for u in cuts),
                threshold=t,
                coverage=_pooled(counts["kept"], counts["n"]),
                selective=_pooled(counts["kept_right"], counts["kept"]),
                kept=sum(counts["kept"]),
                scored=sum(counts["n"]),
            )
        )
    order = dict(zip(frame["slice"], frame["slice_order"], strict=True))
    return sorted(rows, key=lambda r: (r.experiment, order[r.slice]))


def cli_table(rows: list[dict]) -> str:
    """Runs as the CLI prints them: rows of :func:`run_row`, with ``cached`` where known."""
    shown = [
        "run_id",
        "backbone",
        "mode",
        "aug",
        "slice",
        "seed",
        "n_train",
        "accuracy",
        *[p_true_column(t) for t in THRESHOLDS],
        coverage_column(THRESHOLDS[-1]),
    ]
    frame = pd.DataFrame(rows)
    columns = [c for c in (*shown, "cached") if c in frame.columns]
    return frame[columns].to_string(index=False, float_format=lambda x: f"{x:.3f}")


def policy_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean holdout accuracy by augmentation policy (rows) and slice (columns, smallest first),
    over the runs given (one dataset and backbone, say): what helps where."""
    grid = frame.pivot_table(index="aug", columns="slice", values="accuracy", aggfunc="mean")
    return grid[[s for s in slice_order(frame) if s in grid.columns]]


def crossover(frame: pd.DataFrame, baseline: str, challenger: str) -> str | None:
    """The smallest slice from which ``challenger``'s mean accuracy beats ``baseline``'s at that
    slice and every larger slice both measured (experiment labels); None if it never does."""
    means = (
        frame[frame["experiment"].isin([baseline, challenger])]
        .pivot_table(index="slice", columns="experiment", values="accuracy", aggfunc="mean")
        .dropna()
    )
    if means.empty or len(means.columns) < 2:
        return None
    ordered = [s for s in slice_order(frame) if s in means.index]
    ahead = [bool(means.loc[s, challenger] > means.loc[s, baseline]) for s in ordered]
    for i, text in enumerate(ordered):
        if all(ahead[i:]):
            return text
    return None


@dataclass(frozen=True)
class Crossover:
    """Where a fine-tuned experiment overtakes a frozen one (:func:`crossover`)."""

    baseline: str  # the frozen experiment's label
    challenger: str  # the fine-tuned one's
    from_slice: str | None  # None: at no slice measured, or not from any slice on
    from_words: str | None = None  # the slice in words (:func:`slice_words`)

    def sentence(self, names: Mapping[str, str] | None = None) -> str:
        """In words, the experiments by ``names`` (the chart's legend names) where given."""
        names = names or {}
        where = (
            f"from **{self.from_words or self.from_slice}** on."
            if self.from_slice
            else "at no amount of training data measured (or not from any on)."
        )
        challenger, baseline = (names.get(e, e) for e in (self.challenger, self.baseline))
        return f"**{challenger}** beats **{baseline}** {where}"


def crossovers(frame: pd.DataFrame) -> list[Crossover]:
    """Every fine-tuned experiment against every frozen one of ``frame`` (one dataset's runs)."""
    frozen = sorted(frame[frame["mode"] == "frozen"]["experiment"].unique())
    tuned = sorted(frame[frame["mode"] == "finetune"]["experiment"].unique())
    words = dict(
        zip(frame["slice"], map(slice_words, frame["slice"], frame["images_per_class"]), strict=True)
    )
    found = [(b, c, crossover(frame, b, c)) for b in frozen for c in tuned]
    return [Crossover(b, c, at, words.get(at)) for b, c, at in found]


@dataclass(frozen=True)
class Inseparable:
    """An experiment whose fewest and most images per class the holdout cannot tell apart."""

    experiment: str
    smallest: str  # the slice with the fewest images per class, in words
    largest: str  # the one with the most


def inseparable(bars: pd.DataFrame) -> list[Inseparable]:
    """Each experiment whose slices with the fewest and the most images per class have
    overlapping holdout intervals: on this holdout the chart cannot tell them apart."""
    found = []
    for experiment, rows in bars.groupby("experiment"):
        rows = rows.sort_values("slice_order")
        first, last = rows.iloc[0], rows.iloc[-1]
        if len(rows) > 1 and first.low <= last.high and last.low <= first.high:
            found.append(Inseparable(experiment, first.label, last.label))
    return found


def short_names(labels: list[str], sep: str = " · ") -> dict[str, str]:
    """Each label cut down to the parts that differ between the labels given (all of them if
    none differs), so that legends stay short and the full label goes to the hover text."""
    parts = [label.split(sep) for label in labels]
    if len({len(p) for p in parts}) != 1:
        return {label: label for label in labels}
    differ = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    return {
        label: sep.join(p[i] for i in differ) if differ else label
        for label, p in zip(labels, parts, strict=True)
    }


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """A short legend label per run id: slice and seed, the experiment where several are shown,
    the sample seed where runs would otherwise share a label (a learning curve's runs), and
    the start of the run id where even that leaves two alike: one curve per run, never one
    drawn over another."""
    short = short_names(sorted(runs["experiment"].unique()))
    labels = {
        r.run_id: f"{r.slice} s{r.seed}" + (f" · {short[r.experiment]}" if len(short) > 1 else "")
        for r in runs.itertuples()
    }
    for detail in (lambda r: f"sample {r.sample_seed}", lambda r: r.run_id[:6]):
        repeated = Counter(labels.values())
        labels = {
            r.run_id: labels[r.run_id] + (f" · {detail(r)}" if repeated[labels[r.run_id]] > 1 else "")
            for r in runs.itertuples()
        }
    return labels


TABLE_FORMATS = ("csv", "parquet")


def results_frame(summaries: list[Summary]) -> pd.DataFrame:
    """Every run with its whole configuration and its headline numbers, for use elsewhere."""
    frame = runs_frame(summaries).drop(columns=["slice_order"])
    configs = pd.DataFrame(
        [{f"config.{k}": v for k, v in s.config.to_dict().items()} for s in summaries], index=frame.index
    )
    return pd.concat([frame, configs], axis=1)


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """``frame`` as a CSV or Parquet file's bytes."""
    import io

    check_choice("table format", fmt, TABLE_FORMATS)
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
