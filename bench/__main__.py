"""Run the benchmark suite: ``python -m bench`` (quick, a few minutes on 2 cores) or ``--full``.

Writes ``bench/results/<quick|full>.json`` and ``.md`` (the table the README shows) and
``<quick|full>-trust.md`` (the README's trust table), and prints the table. Every comparison
is measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Row

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown(rows: list[Row], info: dict, mode: str, seconds: float) -> str:
    where = info["gpu"] or f"{info['cores']} CPU cores, no GPU"
    lines = [
        f"`python -m bench{' --full' if mode == 'full' else ''}` on {where} "
        f"({info['date']}, torch {info['torch']}), {seconds:.0f} s in all.",
        "",
        "| suite | measure | ours | baseline | ratio | target | met | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        baseline = f"{r.baseline:.3g}" if r.baseline is not None else ""
        target = "" if r.target is None else ("≥ " if r.better == "higher" else "≤ ") + f"{r.target:g}"
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(
            f"| {r.suite} | {r.measure} | {r.ours:.3g} {r.unit} | {baseline} | {ratio} | "
            f"{target} | {met} | {r.note} |"
        )
    if not info["gpu"]:
        lines += [
            "",
            "GPU suite (7): not measured, no CUDA device on this machine. Where there "
            "is one, the same command trains at 224 px, batch 64, in fp16 mixed precision, "
            "and adds the share of time the GPU is busy.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the whole grid, 3 seeds, larger samples")
    args = parser.parse_args(argv)
    mode = "full" if args.full else "quick"

    from bench import audit, budget, cam, dashboard, features, grid, ingest, ray_grid, throughput
    from core.engine.training import quiet_lightning

    quiet_lightning()
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hmd-bench-") as scratch:
        cache = Path(scratch) / "cache"
        grid_rows, results = grid.run(cache, args.full)
        rows += grid_rows
        print(f"grid done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        finetune_rows, model_rate = throughput.finetune(cache, args.full)
        rows += finetune_rows
        rows += throughput.loader(cache, args.full, model_rate)
        rows += throughput.features(cache, args.full)
        rows += features.run(cache, args.full)
        print(f"throughput done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        largest = max(results, key=lambda r: r.summary.n_train).summary.run_id
        rows += cam.run(cache, largest, args.full)
        print(f"grad-cam done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        budget_rows, trust_table = budget.run(Path(scratch) / "budget")  # a cache of its own
        rows += budget_rows
        print(f"budget done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        rows += audit.run(cache, Path(scratch), args.full)
        print(f"audit done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        rows += ingest.run(args.full)
        print(f"ingest done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        rows += dashboard.run(cache, Path(scratch) / "dashboard")
        rows += ray_grid.run(Path(scratch) / "ray", args.full)
    seconds = time.perf_counter() - started
    info = machine()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{mode}.json").write_text(
        json.dumps(
            {
                "mode": mode,
                "seconds": round(seconds, 1),
                "machine": info,
                "rows": [r.to_dict() for r in rows],
            },
            indent=1,
        )
    )
    table = markdown(rows, info, mode, seconds)
    (RESULTS / f"{mode}.md").write_text(table)
    (RESULTS / f"{mode}-trust.md").write_text(
        f"`python -m bench{' --full' if mode == 'full' else ''}` ({info['date']}). {trust_table}"
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
