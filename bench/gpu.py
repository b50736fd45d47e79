"""The benchmark suite's GPU rows alone (fine-tune, loader, features; bench.throughput), for a
machine lent with a GPU for minutes: ``python -m bench.gpu OUT`` writes ``OUT/gpu-bench.json``
after each part, so a run cut short keeps what it measured. The full suite (``python -m bench``)
adds these rows itself where there is a GPU."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench import throughput
from bench.__main__ import machine
from core.engine.training import quiet_lightning


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    quiet_lightning()
    rows, started = [], time.perf_counter()

    def keep(found) -> None:
        rows.extend(found)
        result = {"machine": machine(), "seconds": time.perf_counter() - started, "rows": rows}
        (out / "gpu-bench.json").write_text(json.dumps(result, default=lambda row: row.to_dict(), indent=1))

    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        found, model_rate = throughput.finetune(cache, False)
        keep(found)
        keep(throughput.loader(cache, False, model_rate))
        keep(throughput.features(cache, False))


if __name__ == "__main__":
    main()
