"""The command line's parser: one function per group of commands, each adding its commands'
flags. Kept apart from the commands themselves so that ``--help`` and a bad flag cost no import
of the engine."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from core.base.paths import DEFAULT_DATA

EXPERIMENT_HELP = (
    "experiment label, or a part of it (default: the one with most slices; on a tie, the usual training)"
)

DESCRIPTION = (
    "``python -m core``: inspect datasets, train or fetch runs, sweep grids, answer how many labels a "
    "target takes and which images to label next, report, export, check the cache"
)
Command = Callable[[str, str], argparse.ArgumentParser]  # name, help -> its subparser, --json added


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=DESCRIPTION)
    parser.add_argument("--cache", dest="cache", help="cache folder (default: $HMD_CACHE or ./cache)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON value on stdout")
        return p

    for group in (
        _training_commands,
        _answer_commands,
        _next_batch_command,
        _trust_commands,
        _handover_commands,
        _service_commands,
    ):
        group(command)
    return parser


def _training_commands(command: Command) -> None:
    """Runs: inspect a dataset, train one run, sweep a grid, score on another folder, draw CAMs."""
    from core.answers.cam import METHODS

    p = command("inspect", "classes, readable-image counts and unreadable files of a dataset")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    add_split_flags(p)

    p = command("run", "train one run, or return it from the cache")
    add_training_flags(p)
    p.add_argument("--slice", required=True, help="N/class (e.g. 3/class) or P%% (e.g. 5%%)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--sample-seed", type=int, help="which images the slice holds (default: --seed)")

    p = command("sweep", "a grid of slices over several seeds: the original experiment, or a learning curve")
    add_training_flags(p)
    p.add_argument(
        "--preset",
        default="seed-grid",
        choices=["seed-grid", "curve"],
        help="seed-grid: 1/class, 3/class, 5%%...100%%, seeds 1-3; curve: 1, 2, 3, 5, 8, 13, ... "
        "images per class up to the pool, sample seeds 1-3",
    )
    p.add_argument("--slices", help="comma-separated slices instead of the preset's (e.g. 1/class,5%%,100%%)")
    p.add_argument("--seeds", help="comma-separated training seeds (seed-grid: 1,2,3; curve: 1)")
    p.add_argument(
        "--sample-seeds",
        help="comma-separated sample seeds, varied apart from the training "
        "seeds (curve: 1,2,3; seed-grid: each run's training seed)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="local: one run after another here; ray: each run a Ray task (default: $HMD_EXECUTOR or local)",
    )
    p.add_argument("--address", help="Ray cluster host:port (default: $HMD_RAY_ADDRESS, else a local Ray)")
    p.add_argument("--gpus-per-run", type=float, metavar="F", help="GPUs each Ray task reserves (default 0)")
    p.add_argument("--cpus-per-run", type=float, metavar="N", help="CPU cores per Ray task (default 1)")

    p = command("evaluate", "score a trained run on another labelled folder")
    p.add_argument("--run", required=True)
    p.add_argument("--data", type=Path, required=True)

    p = command("cam", "write Grad-CAM overlays of a run's misclassified holdout images")
    p.add_argument("--run", required=True)
    p.add_argument("--misclassified", type=int, default=8, metavar="N")
    p.add_argument("--method", default="gradcam", choices=list(METHODS))
    p.add_argument("--out", type=Path, required=True)


def _answer_commands(command: Command) -> None:
    """The answers: the budget and the rounds toward it."""
    p = command(
        "budget", "images per class needed for a target holdout accuracy, with its interval and backtest"
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--target", type=float, required=True, help="holdout accuracy to reach, e.g. 0.9")
    p.add_argument("--experiment", help=EXPERIMENT_HELP)
    p.add_argument(
        "--accuracy-at", type=float, metavar="N", help="also the accuracy expected at N images per class"
    )
    p.add_argument(
        "--per-class", action="store_true", help="also share --budget more labels among the classes"
    )
    p.add_argument(
        "--budget", type=int, metavar="B", help="labels to share among the classes (with --per-class)"
    )
    p.add_argument("--fit-up-to", type=float, metavar="N", help="backtest: fit up to N images per class")
    add_split_flags(p)

    p = command("plan", "the labels to collect in rounds toward a target accuracy, refitting after each")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--target", type=float, required=True, help="holdout accuracy to reach, e.g. 0.9")
    p.add_argument(
        "--round-size",
        type=int,
        metavar="N",
        help="more labels per class each round (default: double each round)",
    )
    p.add_argument("--experiment", help=EXPERIMENT_HELP)
    add_split_flags(p)


def _next_batch_command(command: Command) -> None:
    """Which unlabelled images to label next, and the simulation that says whether choosing pays."""
    p = command(
        "next-batch",
        "which unlabelled images to label next; --simulate: whether a strategy beats random on this data",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled class-folder dataset")
    p.add_argument("--pool", type=Path, help="folder of unlabelled images to choose from")
    p.add_argument("--size", type=int, help="images in the batch (with --pool)")
    p.add_argument("--strategy", default="hybrid", help="random, uncertainty, diversity, typical or hybrid")
    p.add_argument("--seed", type=int, default=1, help="seed of the strategy's draws (with --pool)")
    p.add_argument("--out", type=Path, help="the batch as CSV (with --pool)")
    p.add_argument("--label-studio", type=Path, help="the batch as a Label Studio import file (with --pool)")
    p.add_argument(
        "--simulate",
        action="store_true",
        help="replay labelling rounds on --data with its pool's labels hidden",
    )
    p.add_argument(
        "--strategies",
        default="random,uncertainty,diversity,typical,hybrid",
        help="comma-separated strategies to simulate (random is always one: the baseline)",
    )
    p.add_argument("--start", type=int, default=2, help="labels per class before the first round (default 2)")
    p.add_argument("--batch", type=int, default=20, help="labels per class added each round (default 20)")
    p.add_argument("--rounds", type=int, default=6, help="labelling rounds (default 6)")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds of the start draw (default 1,2,3)")
    p.add_argument(
        "--progress",
        type=Path,
        help="a JSON file of where the command is (stage, done of total), updated as it goes",
    )
    p.add_argument(
        "--backbone",
        default="efficientnet_lite0",
        help="frozen features to choose with (with --pool: until a run's head brings its own)",
    )
    p.add_argument("--image-size", type=int, help="pixels (default: the backbone's for the images)")
    add_split_flags(p)


def _trust_commands(command: Command) -> None:
    """What to show and whether to trust it: the report, calibration, thresholds, the audit."""
    p = command("report", "one self-contained HTML report (opens offline) of a dataset's experiment")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, required=True, help="the .html file to write")
    p.add_argument(
        "--target",
        type=float,
        default=None,
        help="holdout accuracy to answer for (default: halfway from the last measured point to the ceiling)",
    )
    p.add_argument("--experiment", help="experiment label, or a part of it")
    p.add_argument(
        "--pdf",
        type=Path,
        help="also print the report to this PDF file with Chromium (HMD_CHROMIUM: another Chromium)",
    )

    p = command(
        "calibration", "are a run's probabilities probabilities? ECE before and after temperature scaling"
    )
    p.add_argument("--run", required=True)
    p.add_argument(
        "--scheme", default="width", choices=["width", "mass"], help="equal-width or equal-mass bins"
    )
    p.add_argument("--bins", type=int, default=15)

    p = command("threshold", "the confidence threshold for a target accuracy, and the share left to a human")
    p.add_argument("--run", required=True)
    p.add_argument(
        "--target", type=float, required=True, help="accuracy wanted on the images kept, e.g. 0.95"
    )
    p.add_argument("--scaled", action="store_true", help="on temperature-scaled confidences")

    p = command(
        "audit", "the holdout's likely label errors, near-duplicates of training images, confused classes"
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument(
        "--backbone", help="features to audit with (default: the runs' backbone, else efficientnet_lite0)"
    )
    p.add_argument("--image-size", type=int, help="pixels (default: the runs' size, else the backbone's)")
    p.add_argument("--experiment", help="count confused pairs over this experiment's runs only")
    add_split_flags(p)


def _handover_commands(command: Command) -> None:
    """What leaves or comes back: model export, labels, MLflow, the run table."""
    p = command(
        "export", "a run's network as ONNX or TorchScript, verified against its predictions, with a card"
    )
    p.add_argument("--run", required=True)
    p.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    p.add_argument(
        "--out", type=Path, required=True, help="the model file to write (the card goes to <out>.json)"
    )

    p = command(
        "import-labels",
        "labels back from the labelling tool (CSV path,label or a Label Studio JSON export) as a new "
        "version of the dataset under the uploads area",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the dataset the images were labelled for")
    p.add_argument(
        "--labels", type=Path, required=True, help="a .csv manifest or a Label Studio .json export"
    )
    p.add_argument("--name", help="the new dataset's folder name (default: <dataset>-v2, -v3...)")

    p = command(
        "export-runs",
        "log every run to MLflow (configuration, holdout metrics, per-epoch curves, predictions, "
        "model card) or write it as TensorBoard events; a run already there is skipped",
    )
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="tracking URI (http://..., file:..., or a folder); bare: the file store <cache>/mlruns",
    )
    p.add_argument(
        "--tensorboard",
        nargs="?",
        const="",
        metavar="DIR",
        help="write TensorBoard event files, one folder per run, under DIR (bare: <cache>/tensorboard)",
    )
    p.add_argument("--data", type=Path, help="only the runs of this dataset folder")

    command("backbones", "the backbone registry and which weights are available offline")
    p = command(
        "runs", "the runs in the cache; with --format and --out, every run's configuration and numbers"
    )
    p.add_argument("--format", choices=["csv", "parquet"], help="write the table to --out as CSV or Parquet")
    p.add_argument("--out", type=Path, help="the file to write")


def _service_commands(command: Command) -> None:
    """The cache's health and the dashboard's workers."""
    p = command("doctor", "check the cache: damaged runs, leftovers of killed processes, bad files")
    p.add_argument("--fix", action="store_true", help="move what cannot be trusted aside, delete leftovers")
    command("worker", "train the dashboard's queued runs until the queue is empty")
    command("roles", "check the dashboard's roles file ($HMD_ROLES or .streamlit/roles.txt): who may do what")
    command("cam-worker", "draw the dashboard's requested CAM overlays until none is left")


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    from core.data.augment import POLICIES
    from core.store.config import MODES, SOLVERS

    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="class-folder dataset")
    parser.add_argument("--backbone", default="efficientnet_lite0", help="see `backbones`")
    parser.add_argument("--mode", default="frozen", choices=MODES)
    parser.add_argument("--aug", default="none", choices=POLICIES)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--image-size", type=int, help="pixels (default: native size, capped by the images)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument(
        "--solver",
        choices=SOLVERS,
        help="a head on cached features: lbfgs, to convergence (default), or adamw minibatches",
    )
    add_split_flags(parser)


def add_split_flags(parser: argparse.ArgumentParser) -> None:
    from core.data.splits import HOLDOUT_SHARE, VAL_SHARE

    parser.add_argument(
        "--holdout",
        type=float,
        default=HOLDOUT_SHARE,
        help=f"share of each class in the fixed holdout set (default {HOLDOUT_SHARE})",
    )
    parser.add_argument(
        "--val",
        type=float,
        default=VAL_SHARE,
        help=f"share of each class in the validation set (default {VAL_SHARE})",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="which images the holdout and validation sets hold (default 0)",
    )
