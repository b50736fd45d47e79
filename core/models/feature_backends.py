"""Which engine computes frozen features, and how: the fastest correct one for the device.

A backend is named ``<engine>-<precision>``; the name is part of the feature cache's file name
and of a run's resolved configuration, so features from two backends never mix.

- ``openvino-fp32``, the CPU default: the backbone exported once to ONNX (kept in
  ``cache/onnx/``) and compiled by OpenVINO for this CPU, in fp32 (OpenVINO would pick bf16
  on a CPU with AMX, 2.5x faster again but 0.2 away from eager fp32). Measured side by side
  on 2 cores (``python -m bench``, features suite): 1.6x ONNX Runtime, 0.5 to 0.6 of the
  arithmetic ceiling at 96 and 224 px, outputs within :data:`TOLERANCE`.
- ``onnxruntime-fp32``: the same export run by ONNX Runtime; where OpenVINO is missing or
  fails. ``torch.compile`` was as fast as ONNX Runtime at 96 px but costs a minute of
  compilation in every new process, more than a dataset's whole extraction.
- ``eager-fp16``, the GPU default: PyTorch in fp16 autocast with channels-last tensors. Asked
  for on a CPU it runs the same way there (within :data:`HALF_TOLERANCE` of fp32), which is
  how its path is tested without a GPU.
- ``eager-fp32``: plain PyTorch, the last fallback.

``HMD_FEATURE_BACKEND`` names one instead. A backend that fails falls back to the next one of
:data:`FALLBACK`, with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.base.device import best_device
from core.base.errors import DiskFull, check_choice
from core.base.paths import write_atomic
from core.base.progress import progress
from core.models.inference import outputs
from core.models.onnx_graph import onnx_bytes

BACKENDS = ("openvino-fp32", "onnxruntime-fp32", "eager-fp32", "eager-fp16")
FALLBACK = {"openvino-fp32": "onnxruntime-fp32", "onnxruntime-fp32": "eager-fp32"}
# largest difference of any feature from eager fp32, relative to the largest feature's size:
# for the fp32 backends, and for fp16 autocast (measured 0.017 on a CPU at 64 px)
TOLERANCE = 1e-4
HALF_TOLERANCE = 0.03
BATCH = 64  # images per eager PyTorch batch on a CPU
# On a GPU: measured on an H200 at 224 px in fp16 (bench/results/gpu-check/feature-batches.json),
# 256 ran at 1.44x the rate of 64 and 0.89 of forward-only on tensors already there.
GPU_BATCH = 256
# Pixels per batch of a compiled runtime: small batches stay in the CPU's caches. Measured on
# 2 cores, 16 images at 96 px were 1.2x (ONNX Runtime) and 1.1x (OpenVINO) faster than 64,
# and 4 at 224 px 1.3x faster than 32.
RUNTIME_PIXELS = 16 * 96 * 96


def threads() -> int:
    """The cores this process may use: its CPU affinity (a container or ``taskset`` may give it
    fewer), capped by ``OMP_NUM_THREADS`` where set. Ray sets that to a task's reserved CPUs,
    so a feature task on a shared node keeps to its reservation, as PyTorch does."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores


def default_backend() -> str:
    """``HMD_FEATURE_BACKEND`` if set, else fp16 on a GPU, else the first of OpenVINO and ONNX
    Runtime that is installed, else eager fp32.

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
    for backend, module in (("openvino-fp32", "openvino"), ("onnxruntime-fp32", "onnxruntime")):
        with contextlib.suppress(ImportError):
            __import__(module)
            return backend
    return "eager-fp32"


def extract(
    backbone, images: np.ndarray, backend: str, onnx_file: Path | None = None, show_progress: bool = True
) -> tuple[np.ndarray, str]:
    """``backbone`` over uint8 N x H x W x 3 ``images`` with ``backend``; the features and the
    backend that computed them: the next of :data:`FALLBACK` when one fails (the reason is
    printed). ``onnx_file`` keeps the exported backbone between processes."""
    while backend in RUNTIMES:
        label = f"extracting features ({backend})" if show_progress else None
        try:
            return in_batches(compiled(backend, backbone, images.shape[1], onnx_file), images, label), backend
        except runtime_errors() as error:  # a bug of ours (TypeError, ValueError, ...) is raised
            reason = f"{type(error).__name__}: {error}".splitlines()[0]
            print(f"warning: {backend} failed ({reason}); using {FALLBACK[backend]}", file=sys.stderr)
            backend = FALLBACK[backend]
    label = f"extracting features ({backend})" if show_progress else None
    batch = GPU_BATCH if best_device().type == "cuda" else BATCH
    features = outputs(backbone, images, batch, channels_last=True, label=label, half=backend == "eager-fp16")
    return features, backend


Runner = Callable[[np.ndarray], np.ndarray]  # uint8 N x H x W x 3 images -> N x F features


@functools.cache
def runtime_errors() -> tuple[type[BaseException], ...]:
    """What exporting to ONNX and running a runtime are known to raise: OpenVINO's and torch's
    ONNX exporter's errors are RuntimeErrors, ONNX Runtime raises its own types (not
    RuntimeErrors), a missing runtime an ImportError, a file an OSError, memory a MemoryError,
    and a disk too full for the exported graph a DiskFull (eager PyTorch needs no file).
    Only these make a backend fall back; any other error is a bug of ours and is raised."""
    known: tuple[type[BaseException], ...] = (RuntimeError, ImportError, OSError, MemoryError, DiskFull)
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as state
    except ImportError:
        return known
    own = (v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception))
    return (*known, *own)


def compiled(backend: str, backbone, size: int, onnx_file: Path | None = None) -> Runner:
    """``backbone`` at ``size`` px exported to ONNX and loaded by the runtime of ``backend``.
    ``onnx_file`` keeps the export (written when missing, again when damaged)."""
    load = RUNTIMES[backend]
    with tempfile.TemporaryDirectory() as scratch:
        path = onnx_file or Path(scratch) / "backbone.onnx"
        if path.exists():
            with contextlib.suppress(*runtime_errors()):  # a damaged export: exported again below
                return load(path)
        if not write_atomic(path, onnx_bytes(backbone, size), derived=True):  # read-only: a scratch copy
            path = Path(scratch) / "backbone.onnx"
            path.write_bytes(onnx_bytes(backbone, size))
        return load(path)


def in_batches(run: Runner, images: np.ndarray, label: str | None = None) -> np.ndarray:
    """Features of ``images`` by a compiled runtime, in batches of :data:`RUNTIME_PIXELS`."""
    batch = max(1, round(RUNTIME_PIXELS / (images.shape[1] * images.shape[2])))
    starts = range(0, len(images), batch)
    chunks = [
        run(images[start : start + batch])
        for start in (progress(starts, label, unit=f"batch of {batch}") if label else starts)
    ]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)


def _openvino(path: Path) -> Runner:
    """OpenVINO in fp32, taking uint8 NHWC images: the conversion to 0..1 NCHW floats (as
    :func:`core.data.images.to_tensor`) is compiled into the model, 5 to 13% faster than in numpy."""
    import openvino

    core = openvino.Core()
    steps = openvino.preprocess.PrePostProcessor(core.read_model(str(path)))
    steps.input().tensor().set_element_type(openvino.Type.u8).set_layout(openvino.Layout("NHWC"))
    steps.input().model().set_layout(openvino.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(openvino.Type.f32).scale(255.0)
    hints = {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": threads(),
        "PERFORMANCE_HINT": "LATENCY",
    }
    request = core.compile_model(steps.build(), "CPU", hints).create_infer_request()
    # the request's output buffer is reused by its next call: copied out
    return lambda images: np.array(request.infer({0: images})[0], copy=True)


def _onnxruntime(path: Path) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: _pixels(images)})[0]


RUNTIMES: dict[str, Callable[[Path], Runner]] = {"openvino-fp32": _openvino, "onnxruntime-fp32": _onnxruntime}


def _pixels(chunk: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W in 0..1, as :func:`core.data.images.to_tensor`."""
    return np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)
