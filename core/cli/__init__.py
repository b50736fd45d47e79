"""``python -m core``: inspect datasets, train or fetch runs, sweep grids, evaluate, export CAMs,
backtest the choice of the next batch to label, check the cache.

With ``--json`` a command prints one JSON object (or list) on stdout and nothing else there:
progress and library chatter go to stderr. Errors are one line on stderr, exit status 2 for bad
input and 1 for anything unexpected; a command stopped by Ctrl+C or SIGTERM exits 130.

Each command is a pair: a function that does the work and returns typed results (their
``to_dict()`` is the JSON), and one that prints them for a person.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.base.errors import UserError, check_share
from core.base.paths import cache_root, disk_full, is_disk_full
from core.base.progress import reporting, stage_writer
from core.base.words import counted
from core.cli.parser import build_parser
from core.cli.results import (
    Backbone,
    CamFiles,
    DoctorReport,
    Exported,
    ReportWritten,
    TableWritten,
    WorkDone,
)
from core.serving import access

if TYPE_CHECKING:
    from core.present.report_pdf import PrintedReport


@dataclass(frozen=True)
class Inspection:
    """What ``inspect`` reports about a dataset folder."""

    root: str
    fingerprint: str
    counts: dict[str, int]
    unreadable: tuple[tuple[str, str], ...]  # (relative path, reason)
    median_side: int
    splits: dict[str, int]  # empty when the dataset cannot be split
    problem: str | None

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "fingerprint": self.fingerprint,
            "classes": self.counts,
            "unreadable": [path for path, _ in self.unreadable],
            "unreadable_reasons": dict(self.unreadable),
            "median_side": self.median_side,
            "splits": self.splits,
            "problem": self.problem,
        }


def _cmd_inspect(args: argparse.Namespace) -> Inspection:
    from core.data.datasets import scan
    from core.data.splits import make_splits

    dataset = scan(args.data, args.cache_dir, progress=True)
    problem = None
    try:
        splits = make_splits(dataset.labels, dataset.classes, *_split(args))
        sizes = {"holdout": len(splits.holdout), "val": len(splits.val), "train_pool": splits.pool_size()}
    except UserError as error:
        problem, sizes = str(error), {}
    return Inspection(
        str(dataset.root),
        dataset.fingerprint,
        dataset.counts(),
        dataset.unreadable,
        dataset.median_side,
        sizes,
        problem,
    )


def _print_inspect(result: Inspection) -> None:
    print(f"{result.root}  ({sum(result.counts.values())} readable images)")
    width = max(map(len, result.counts))
    for name, count in result.counts.items():
        print(f"  {name:<{width}}  {count}")
    if result.splits:
        print("splits: " + ", ".join(f"{k} {v}" for k, v in result.splits.items()))
    for path, reason in result.unreadable:
        print(f"unreadable: {path}: {reason}")
    if result.problem:
        print(f"problem: {result.problem}")


def _split(args: argparse.Namespace):
    """The ``--holdout``, ``--val`` and ``--split-seed`` flags as one split, checked: a share
    of 1.5 would otherwise read as "no cached runs" to the commands that only look runs up."""
    from core.data.splits import check_split
    from core.store.config import Split

    check_split(args.holdout, args.val, args.split_seed)
    return Split(args.holdout, args.val, args.split_seed)


def _config(args: argparse.Namespace, slice_text: str = "100%"):
    from core.data.splits import check_split
    from core.store.config import RunConfig

    check_split(*_split(args))
    return RunConfig(
        data=str(args.data),
        backbone=args.backbone,
        mode=args.mode,
        slice=getattr(args, "slice", None) or slice_text,
        aug=args.aug,
        seed=getattr(args, "seed", 0),
        sample_seed=getattr(args, "sample_seed", None),
        epochs=args.epochs,
        image_size=args.image_size,
        batch_size=args.batch_size,
        lr=args.lr,
        holdout=args.holdout,
        val=args.val,
        split_seed=args.split_seed,
        solver=args.solver,
    )


def _cmd_run(args: argparse.Namespace):
    config = _config(args)  # checked before torch is imported: a typo answers at once
    from core.engine.pipeline import train_run

    return train_run(config, args.cache_dir, show_progress=True)


def _cmd_sweep(args: argparse.Namespace) -> list:
    from core.store.config import CURVE_SAMPLE_SEEDS, CURVE_SEEDS, ORIGINAL_SEEDS, parse_seeds, parse_slices

    curve = args.preset == "curve"
    slices = parse_slices(args.slices) if args.slices else _preset_slices(args)
    seeds = parse_seeds(args.seeds) if args.seeds else list(CURVE_SEEDS if curve else ORIGINAL_SEEDS)
    sample_seeds = parse_seeds(args.sample_seeds, "--sample-seeds") if args.sample_seeds else None
    if curve and sample_seeds is None:
        sample_seeds = list(CURVE_SAMPLE_SEEDS)
    ray, config = _ray_options(args), _config(args)  # checked before torch is imported
    if ray is None:
        from core.engine.pipeline import sweep

        return sweep(config, slices, seeds, args.cache_dir, True, sample_seeds)
    from core.serving import ray_executor

    return ray_executor.sweep(config, slices, seeds, args.cache_dir, ray, True, sample_seeds)


def _ray_options(args: argparse.Namespace):
    """Where the sweep runs: ``None`` for here, or the Ray cluster's options (``--executor``,
    else ``HMD_EXECUTOR``)."""
    from core.serving.jobs import executor as from_environment
    from core.serving.ray_executor import RayOptions

    executor = args.executor or from_environment()
    if executor == "local":
        if args.address or args.gpus_per_run is not None or args.cpus_per_run is not None:
            raise UserError("--address, --gpus-per-run and --cpus-per-run need --executor ray")
        return None
    defaults = RayOptions()
    return RayOptions(
        address=args.address,
        gpus_per_run=defaults.gpus_per_run if args.gpus_per_run is None else args.gpus_per_run,
        cpus_per_run=defaults.cpus_per_run if args.cpus_per_run is None else args.cpus_per_run,
    )


def _preset_slices(args: argparse.Namespace) -> list[str]:
    from core.answers.budget import curve_grid
    from core.data.splits import ORIGINAL_SLICES

    if args.preset == "seed-grid":
        return list(ORIGINAL_SLICES)
    return list(dict.fromkeys(c.slice for c in curve_grid(_config(args), args.cache_dir)))


def _print_results(results: list) -> None:
    from core.store.tables import cli_table, run_row

    print(cli_table([{**run_row(r.summary), "cached": r.cached} for r in results]))


def _cmd_evaluate(args: argparse.Namespace):
    from core.answers.testsets import score

    return score(args.cache_dir, args.run, args.data, show_progress=True)


def _print_evaluate(result) -> None:
    last = result.scores.thresholds[-1]
    print(
        f"run {result.run_id} on {result.data}: accuracy {result.scores.accuracy:.3f} over "
        f"{result.scores.n} images; P(true)>{last.threshold:g}: {last.threshold_accuracy:.3f}"
    )
    for name, count in result.unknown.items():
        print(f"not scored: class {name} ({count} images) is not among the run's classes")


def _cmd_cam(args: argparse.Namespace) -> CamFiles:
    from core.answers.cam import export_misclassified

    written = export_misclassified(args.cache_dir, args.run, args.misclassified, args.method, args.out)
    return CamFiles(args.run, args.method, tuple(str(p) for p in written))


def _print_cam(result: CamFiles) -> None:
    for path in result.files:
        print(path)
    print(f"{counted(len(result.files), 'overlay')} written")


def _cmd_backbones(args: argparse.Namespace) -> list[Backbone]:
    from core.models.backbones import get_spec, list_backbones, weights_available

    return [
        Backbone(
            name,
            spec.default_size,
            spec.weights,
            weights_available(spec),
            spec.cam_layer,
            spec.description,
        )
        for name in list_backbones()
        for spec in [get_spec(name)]
    ]


def _print_backbones(rows: list[Backbone]) -> None:
    for row in rows:
        print(f"{row.name:<20} {row.default_size:>4}px  {row.readiness():<22} {row.description}")


def _cmd_runs(args: argparse.Namespace):
    from core.base.paths import write_atomic
    from core.store.runs import scan_runs
    from core.store.tables import results_frame, table_bytes

    listing = scan_runs(args.cache_dir)
    for rid, reason in listing.damaged.items():
        print(
            f"warning: run {rid} is damaged ({reason}); python -m core doctor --fix moves it aside",
            file=sys.stderr,
        )
    if args.format:
        if not args.out:
            raise UserError(f"--format {args.format} needs --out FILE")
        write_atomic(args.out, table_bytes(results_frame(listing.summaries), args.format))
        return TableWritten(str(args.out), len(listing.summaries), args.format)
    return listing.summaries


def _print_runs(summaries) -> None:
    from core.store.tables import cli_table, run_row

    if isinstance(summaries, TableWritten):
        print(f"wrote {counted(summaries.runs, 'run')} to {summaries.out}")
        return
    print(cli_table([run_row(s) for s in summaries]) if summaries else "no runs cached yet")


def _cmd_doctor(args: argparse.Namespace) -> DoctorReport:
    from core.store.doctor import check, fix

    findings = check(args.cache_dir)
    repaired = fix(args.cache_dir, findings) if args.fix else []
    return DoctorReport(str(args.cache_dir), tuple(findings), tuple(repaired))


def _print_doctor(result: DoctorReport) -> None:
    from core.store.doctor import KINDS, REPAIRS

    for finding in result.findings:
        detail = f" ({finding.detail})" if finding.detail else ""
        done = f" -> {REPAIRS[finding.kind]}" if finding in result.repaired else ""
        print(f"{KINDS[finding.kind]}: {finding.path}{detail}{done}")
    problems = [f for f in result.findings if f.kind != "quarantined"]
    if not problems:
        print(f"{result.cache}: nothing needs attention")
    elif not result.repaired:
        print(f"{counted(len(problems), 'thing')} to fix: python -m core doctor --fix repairs them")


def _warn_damaged(cache_dir: Path) -> None:
    """One line on stderr when damaged runs were left out of an answer: ``runs`` names them, but
    an answer read without them gave no sign that the curve had lost points."""
    from core.store.runs import scan_runs

    if damaged := scan_runs(cache_dir).damaged:
        print(
            f"warning: {counted(len(damaged), 'damaged run')} left out (python -m core doctor lists them; "
            "--fix moves them aside)",
            file=sys.stderr,
        )


def _cmd_budget(args: argparse.Namespace):
    from core.answers import budget

    check_share("--target", args.target)
    if args.per_class and args.budget is None:
        raise UserError("--per-class needs --budget N: how many more labels to share among the classes")
    if args.budget is not None and not args.per_class:
        raise UserError("--budget needs --per-class: it is the labels to share among the classes")
    _warn_damaged(args.cache_dir)
    selection = budget.select(args.cache_dir, args.data, args.experiment, *_split(args))
    analysis = budget.analyse(selection, args.fit_up_to)
    per_class = args.budget if args.per_class else None
    return budget.report(analysis, args.target, args.accuracy_at, per_class)


def _print_budget(report) -> None:
    from core.answers.budget import describe

    print(describe(report))


def _cmd_plan(args: argparse.Namespace):
    from core.answers import budget, rounds

    check_share("--target", args.target)
    _warn_damaged(args.cache_dir)
    selection = budget.select(args.cache_dir, args.data, args.experiment, *_split(args))
    return rounds.plan(budget.analyse(selection), args.target, args.round_size)


def _print_plan(found) -> None:
    print(found.assumptions.rule)
    for said in (found.reason, found.caveat):
        if said:
            print(said)
    for r in found.rounds:
        e = r.accuracy
        print(
            f"{r.cumulative_per_class:>8,} per class: accuracy {e.estimate:.3f} "
            f"({e.low:.3f} to {e.high:.3f}), target reached with probability {r.p_reached:.0%}"
            + ("" if r.reliable else " (beyond reliable reach)")
        )


def _cmd_next_batch(args: argparse.Namespace):
    if args.simulate:
        if args.pool is not None:
            raise UserError("next-batch takes --pool (choose a batch) or --simulate (the backtest), not both")
        return _simulate_next_batch(args)
    if args.pool is None:
        raise UserError("next-batch without --simulate needs --pool")
    return _next_batch_from_pool(args)


def _next_batch_from_pool(args: argparse.Namespace):
    """``next-batch --pool``: the batch chosen, ranked and written for the labelling tool."""
    from core.answers.nextbatch.batch import Request, next_batch

    if args.size is None:
        raise UserError("next-batch --pool needs --size N: how many images to label in this batch")
    request = Request(
        data=args.data,
        pool=args.pool,
        size=args.size,
        strategy=args.strategy,
        seed=args.seed,
        out=args.out,
        label_studio=args.label_studio,
        split=_split(args),
        backbone=args.backbone,
        image_size=args.image_size,
    )
    if args.progress is None:
        return next_batch(request, args.cache_dir, progress=True)
    with reporting(stage_writer(args.progress)):  # for a page following it from another process
        return next_batch(request, args.cache_dir, progress=True)


def _print_batch(result) -> None:
    head = f"run {result.head_run}'s head" if result.head_run else "no head yet (cold start)"
    print(
        f"{counted(result.size, 'image')} to label next from {result.pool} "
        f"({result.strategy}; suggestions: {head}):"
    )
    for item in result.items:
        suggested = f"  {item.suggested} ({item.p_suggested:.0%})" if item.suggested else ""
        print(f"  {item.rank:>3}. {item.path}{suggested}  {item.reason}")
    for left_out in result.excluded:
        print(f"left out: {left_out.path}: {left_out.reason}")
    print("wrote " + ", ".join(result.files))


def _simulate_next_batch(args: argparse.Namespace):
    """``next-batch --simulate``: each strategy against random on the dataset's own labels."""
    from core.answers.nextbatch.simulate import Settings, simulate
    from core.store.config import parse_seeds

    strategies = tuple(part.strip() for part in args.strategies.split(",") if part.strip())
    settings = Settings(strategies, args.start, args.batch, args.rounds, tuple(parse_seeds(args.seeds)))
    split = _split(args)
    say = _to_stderr if args.progress is None else _progress_file(args.progress, settings.replays)
    return simulate(args.data, args.cache_dir, settings, args.backbone, args.image_size, split, say)


def _to_stderr(message: str) -> None:
    """Progress for a person watching; stdout is kept for the result."""
    print(message, file=sys.stderr, flush=True)


def _progress_file(path: Path, total: int) -> Callable[[str], None]:
    """Progress for a page following the simulation from another process: the rounds done of
    ``total``, written to ``path`` after each (and the line to stderr, as without)."""
    from core.serving.simulations import ROUNDS

    write, started, done = stage_writer(path), time.monotonic(), 0
    write(ROUNDS, done, total, "rounds", 0.0)

    def say(message: str) -> None:
        nonlocal done
        done += 1
        write(ROUNDS, done, total, "rounds", time.monotonic() - started)
        _to_stderr(message)

    return say


def _print_simulation(result) -> None:
    print(
        f"{result.dataset} ({result.backbone}, {result.image_size} px), {result.holdout_size} holdout images:"
    )
    for curve in result.curves:
        points = ", ".join(f"{p.labels}: {p.accuracy:.3f}" for p in curve.rounds())
        share = result.labels_to_match_random(curve)
        matched = "never" if share is None else f"{share.estimate:.0%} of random's labels"
        print(f"  {curve.strategy:<12} {points}  (to match random: {matched})")
    print(result.verdict())


def _print_next_batch(result) -> None:
    from core.answers.nextbatch.batch import NextBatch

    (_print_batch if isinstance(result, NextBatch) else _print_simulation)(result)


def _cmd_report(args: argparse.Namespace) -> ReportWritten:
    from core.present.report_html import write_report

    _warn_damaged(args.cache_dir)
    path = write_report(args.cache_dir, args.data, args.out, args.target, args.experiment)
    written = ReportWritten(str(path), path.stat().st_size)
    if not args.pdf:
        return written
    printed = _print_report(path, args.pdf)
    return dataclasses.replace(written, pdf=str(printed.path), pdf_pages=printed.pages)


def _print_report(html: Path, pdf: Path) -> PrintedReport:
    """``--pdf``: print the report just written; where that fails, say where the HTML is."""
    from core.present.report_pdf import print_pdf

    try:
        return print_pdf(html, pdf)
    except UserError as error:
        raise UserError(f"{error}; the HTML report is at {html}") from error


def _print_report_result(result: ReportWritten) -> None:
    print(f"wrote {result.out} ({result.bytes:,} bytes)")
    if result.pdf is not None:
        print(f"wrote {result.pdf} ({result.pdf_pages} pages)")


def _cmd_calibration(args: argparse.Namespace):
    from core.answers.trust import run_calibration

    return run_calibration(args.cache_dir, args.run, args.scheme, args.bins)


def _print_calibration(result) -> None:
    print(
        f"ECE {result.ece.estimate:.4f} (95% interval {result.ece.low:.4f} to {result.ece.high:.4f}), "
        f"{result.direction}; after temperature scaling (T = {result.temperature:.3f}, fitted on the "
        f"validation set): {result.ece_scaled.estimate:.4f} ({result.ece_scaled.low:.4f} to "
        f"{result.ece_scaled.high:.4f}). Holdout accuracy {result.accuracy:.3f} before and "
        f"{result.accuracy_scaled:.3f} after, over {result.n} images."
    )
    print("  confidence  accuracy  images")
    for b in result.bins:
        print(f"  {b.confidence:10.3f}  {b.accuracy:8.3f}  {b.count:6d}")


def _cmd_threshold(args: argparse.Namespace):
    from core.answers.trust import run_threshold

    return run_threshold(args.cache_dir, args.run, args.target, args.scaled)


def _print_threshold(plan) -> None:
    if plan.threshold is None or plan.automated_share is None:
        print(f"target {plan.target:g}: {plan.reason}")
        return
    k, a, h = plan.kept_accuracy, plan.automated_share, plan.human_share
    print(
        f"Threshold {plan.threshold:.4f} (chosen on the validation set for {plan.target:g}). On the holdout: "
        f"kept images {k.estimate:.3f} accurate ({k.low:.3f} to {k.high:.3f}); {a.estimate:.1%} automated "
        f"({a.low:.1%} to {a.high:.1%}), {h.estimate:.1%} to a human ({h.low:.1%} to {h.high:.1%})."
    )


def _cmd_audit(args: argparse.Namespace):
    from core.answers.audit import audit

    split = _split(args)
    return audit(args.data, args.cache_dir, args.backbone, args.image_size, split, args.experiment)


def _print_audit(found) -> None:
    flagged = found.label_share()
    print(
        f"{found.dataset} ({found.backbone}, {found.image_size} px): {len(found.label_issues)} of "
        f"{found.holdout_size} holdout labels look wrong ({flagged.estimate:.1%}, 95% interval "
        f"{flagged.low:.1%} to {flagged.high:.1%}), worst first:"
    )
    for issue in found.label_issues[:20]:
        print(
            f"  {issue.path}: labelled {issue.given_label}, looks like {issue.suggested_label} "
            f"({issue.score:.3f})"
        )
    if found.near_duplicates:
        print(
            f"{counted(len(found.near_duplicates), 'near-duplicate')} of training images; "
            "the holdout measures memory:"
        )
        for pair in found.near_duplicates[:20]:
            print(
                f"  {pair.train_path} ~ {pair.other_path} ({pair.other_set}, "
                f"similarity {pair.similarity:.3f})"
            )
    else:
        print("No training image reappears in the holdout or validation set.")
    if found.confused_pairs:
        print("Most confused (true -> predicted, over the runs' holdouts):")
        for pair in found.confused_pairs:
            print(f"  {pair.true} -> {pair.predicted}: {pair.count} ({pair.share:.1%} of {pair.true})")


def _cmd_export(args: argparse.Namespace) -> Exported:
    from core.engine.export import card_path, export

    card = export(args.cache_dir, args.run, args.format, args.out)
    return Exported(card, str(args.out), str(card_path(args.out)))


def _print_export(result: Exported) -> None:
    print(
        f"wrote {result.out} and {result.card_path}: {result.card.format} model of run "
        f"{result.card.run_id}, {result.card.verified.sentence()}"
    )


def _cmd_import_labels(args: argparse.Namespace):
    from core.answers.nextbatch.labels_io import import_labels

    return import_labels(args.data, args.labels, args.cache_dir, args.name)


def _print_import_labels(result) -> None:
    counts = ", ".join(f"{name} {n}" for name, n in result.counts.items())
    added = sum(result.added.values())
    new = counted(added, "newly labelled image")
    print(f"wrote {result.dataset}: {new} added to {result.parent.name} ({counts})")
    if result.unlabelled:
        print(f"{counted(result.unlabelled, 'row')} without a label were left out")


def _cmd_export_runs(args: argparse.Namespace):
    if (args.mlflow is None) == (args.tensorboard is None):
        raise UserError(
            "export-runs needs one of --mlflow [URI] (bare: <cache>/mlruns) or --tensorboard [DIR] "
            "(bare: <cache>/tensorboard)"
        )
    if args.tensorboard is not None:
        from core.engine.tensorboard_logs import export_events, log_folder

        return export_events(args.cache_dir, log_folder(args.tensorboard or None, args.cache_dir), args.data)
    from core.engine.tracker import export_runs, tracking_uri

    return export_runs(args.cache_dir, tracking_uri(args.mlflow or None, args.cache_dir), args.data)


def _cmd_cam_worker(args: argparse.Namespace) -> WorkDone:
    from core.serving.cam_requests import work

    return WorkDone(work(args.cache_dir), "drawn")


def _cmd_worker(args: argparse.Namespace) -> WorkDone:
    from core.serving.jobs import work

    return WorkDone(work(args.cache_dir), "trained")


COMMANDS = {
    "inspect": (_cmd_inspect, _print_inspect),
    "run": (_cmd_run, lambda result: _print_results([result])),
    "sweep": (_cmd_sweep, _print_results),
    "evaluate": (_cmd_evaluate, _print_evaluate),
    "cam": (_cmd_cam, _print_cam),
    "budget": (_cmd_budget, _print_budget),
    "plan": (_cmd_plan, _print_plan),
    "next-batch": (_cmd_next_batch, _print_next_batch),
    "report": (_cmd_report, _print_report_result),
    "calibration": (_cmd_calibration, _print_calibration),
    "threshold": (_cmd_threshold, _print_threshold),
    "audit": (_cmd_audit, _print_audit),
    "export": (_cmd_export, _print_export),
    "import-labels": (_cmd_import_labels, _print_import_labels),
    "export-runs": (_cmd_export_runs, lambda result: print(result.sentence())),
    "backbones": (_cmd_backbones, _print_backbones),
    "runs": (_cmd_runs, _print_runs),
    "doctor": (_cmd_doctor, _print_doctor),
    "roles": (lambda args: access.load_roles(), lambda roles: print(roles.describe())),
    "worker": (_cmd_worker, lambda result: print(f"{counted(result.count, 'job')} done")),
    "cam-worker": (_cmd_cam_worker, lambda result: print(f"{counted(result.count, 'request')} drawn")),
}


def to_json(value: Any) -> Any:
    """Typed results as JSON values: objects by their ``to_dict()``, containers element-wise, and
    a number that JSON cannot hold (NaN, infinity) as null: ``json.dumps`` would print ``NaN``,
    which no strict parser reads."""
    if hasattr(value, "to_dict"):
        return to_json(value.to_dict())
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a shutdown, an operator's kill) stops a command as Ctrl+C does: the run in
    # progress is recorded as cancelled and a worker's job goes back on the queue
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    do, show = COMMANDS[args.command]
    try:
        args.cache_dir = cache_root(args.cache)
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the result alone
            result = do(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl+C into SystemExit(1)
        print("error: interrupted; unfinished runs are not marked complete", file=sys.stderr)
        return 130
    except Exception as error:
        if is_disk_full(error):
            print(f"error: {disk_full(getattr(args, 'cache_dir', Path.cwd()))}", file=sys.stderr)
            return 2
        if os.environ.get("HMD_DEBUG"):
            raise
        message = str(error).splitlines()[0] if str(error) else ""
        print(f"error: {type(error).__name__}: {message} (HMD_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(to_json(result), default=str, allow_nan=False))
    else:
        show(result)
    return 0
