"""Which engine computes frozen features, and how: the fastest correct one for the device.

A backend is named ``<engine>-<precision>``; the name is part of the feature cache's file name
and of a run's resolved configuration, so features from two backends never mix.

- ``onnxruntime-fp32``, the CPU default: the backbone exported once to ONNX (kept in
  ``cache/onnx/``) and run by ONNX Runtime on every core. Measured side by side with eager
  PyTorch on 2 cores (``python -m bench``, features suite): 2 to 3x faster at 224 px, 1.5x at
  96 px, outputs within :data:`TOLERANCE`. ``torch.compile`` was as fast at 96 px but costs a
  minute of compilation in every new process, more than a dataset's whole extraction.
- ``eager-fp16``, the GPU default: PyTorch in fp16 autocast with channels-last tensors.
- ``eager-fp32``: plain PyTorch, the fallback when ONNX Runtime is missing or fails, and what
  ``HMD_FEATURE_BACKEND=eager-fp32`` asks for.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from core.errors import check_choice
from core.inference import outputs
from core.paths import write_atomic
from core.progress import progress

BACKENDS = ("onnxruntime-fp32", "eager-fp32", "eager-fp16")
# largest difference of any feature from eager fp32, relative to the largest feature's size
TOLERANCE = 1e-4
BATCH = 64


def threads() -> int:
    """The cores this process may use (a container or ``taskset`` may give it fewer)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_backend() -> str:
    """``HMD_FEATURE_BACKEND`` if set, else fp16 on a GPU, else ONNX Runtime when installed.

    Raises:
        UserError: ``HMD_FEATURE_BACKEND`` names no backend.
    """
    chosen = os.environ.get("HMD_FEATURE_BACKEND")
    if chosen:
        check_choice("HMD_FEATURE_BACKEND", chosen, BACKENDS)
        return chosen
    import torch

    if torch.cuda.is_available():
        return "eager-fp16"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "eager-fp32"
    return "onnxruntime-fp32"


def extract(
    backbone, images: np.ndarray, backend: str, onnx_file: Path | None = None, show_progress: bool = True
) -> tuple[np.ndarray, str]:
    """``backbone`` over uint8 N x H x W x 3 ``images`` with ``backend``; the features and the
    backend that computed them: eager fp32 when ONNX Runtime fails (the reason is printed).

    ``onnx_file`` keeps the exported backbone between processes (exported when missing).
    """
    label = f"extracting features ({backend})" if show_progress else None
    if backend == "onnxruntime-fp32":
        try:
            return _onnxruntime(backbone, images, onnx_file, label), backend
        except Exception as error:  # onnxruntime raises its own, unexported exception types
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            print(f"warning: ONNX Runtime failed ({reason}); using eager PyTorch", file=sys.stderr)
            backend = "eager-fp32"
    features = outputs(backbone, images, BATCH, channels_last=True, label=label, half=backend == "eager-fp16")
    return features, backend


def _onnxruntime(backbone, images: np.ndarray, onnx_file: Path | None, label: str | None) -> np.ndarray:
    session = _session(onnx_file.read_bytes()) if onnx_file is not None and onnx_file.exists() else None
    if session is None:  # not exported yet, or a damaged export: exported (again)
        from core.export import onnx_bytes  # imported here: core.export reads runs, runs configs

        model = onnx_bytes(backbone, images.shape[1])
        session = _session(model, strict=True)
        if onnx_file is not None:
            write_atomic(onnx_file, model)
    name = session.get_inputs()[0].name
    starts = range(0, len(images), BATCH)
    chunks = [
        session.run(None, {name: _pixels(images[start : start + BATCH])})[0]
        for start in (progress(starts, label, unit=f"batch of {BATCH}") if label else starts)
    ]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)


def _session(model: bytes, strict: bool = False):
    """An ONNX Runtime session on every core; ``None`` for a model it cannot load unless
    ``strict`` (then its error goes up)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime raises its own, unexported exception types
        if strict:
            raise
        return None


def _pixels(chunk: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W in 0..1, as :func:`core.images.to_tensor`."""
    return np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)
