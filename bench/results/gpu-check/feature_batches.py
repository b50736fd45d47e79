"""Run on the lent H200 (features.sh): the frozen-feature row of bench.throughput, side by side,
for the staging change to core/models/inference.py. Each variant is the product's `extract`
(eager-fp16) over 4,096 cached images at 224 px against forward-only on tensors already on the
GPU; the variants differ in the eager batch size and in `outputs` (before: each batch copied on
the host, sent from pageable memory and brought back at once; after: two pinned staging
buffers, outputs kept on the GPU to the end). Writes OUT/feature-batches.json."""

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import core.models.feature_backends as fb
from bench import throughput

# core/models/inference.py as it was before the staging buffers, written beside the repository
# where it runs (features.sh): git show 129f7a1:core/models/inference.py > .before/inference.py
spec = importlib.util.spec_from_file_location("before", Path(sys.argv[2]))
before = importlib.util.module_from_spec(spec)
spec.loader.exec_module(before)
after = fb.outputs
rows = []
with tempfile.TemporaryDirectory() as scratch:
    for name, outputs in (("before", before.outputs), ("after", after)):
        for batch in (64, 256):
            fb.outputs, fb.BATCH, fb.GPU_BATCH = outputs, batch, batch
            (row,) = throughput.features(Path(scratch) / "cache", False)
            rows.append({"outputs": name, "batch": batch, **row.to_dict()})
            print(rows[-1], flush=True)
            (Path(sys.argv[1]) / "feature-batches.json").write_text(json.dumps(rows, indent=1))
