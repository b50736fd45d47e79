"""Frozen features from OpenVINO and ONNX Runtime agree with eager PyTorch; the backend keys the
feature cache and the run; a failing backend falls back to the next one and says so."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from core.base.errors import UserError
from core.data.datasets import scan
from core.data.images import image_array, to_tensor
from core.engine.features import cached_features, feature_file
from core.models.backbones import build_backbone
from core.models.feature_backends import (
    HALF_TOLERANCE,
    RUNTIMES,
    TOLERANCE,
    default_backend,
    extract,
    threads,
)
from core.models.inference import outputs
from core.store.config import ENGINE_VERSION, RunConfig, resolve, run_id
from tests.quick import quick_run

SIZE = 64


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_batches_pass_through_the_reused_staging_buffers_whole_and_in_order(dtype):
    """Batches are copied through two staging buffers (pinned on a GPU) that are refilled in
    turn: 8 inputs in batches of 3 reuse one, and the last batch is short. A model that returns
    a view of its input (Flatten) must still see each batch as it was."""
    import torch

    inputs = np.random.default_rng(0).integers(0, 256, (8, 5, 4, 3)).astype(dtype)
    got = outputs(torch.nn.Flatten(), inputs, batch_size=3)
    wanted = to_tensor(inputs) if dtype == np.uint8 else torch.from_numpy(inputs)
    # a GPU divides by 255 a last bit differently from a CPU; a batch out of place is off by far more
    np.testing.assert_allclose(got, wanted.flatten(1).numpy(), rtol=1e-6, atol=0)


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("backend", RUNTIMES)
@pytest.mark.parametrize("size", [64, 97])  # 97: an odd side, where "same" padding is uneven
def test_compiled_features_agree_with_eager_fp32(tiny_data, cache_dir, size, backend):
    images = image_array(scan(tiny_data, cache_dir), size, cache_dir)
    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    eager, used_eager = extract(backbone, images, "eager-fp32", show_progress=False)
    compiled, used = extract(backbone, images, backend, show_progress=False)
    assert (used_eager, used) == ("eager-fp32", backend)
    assert eager.shape == compiled.shape == (len(images), 1280)
    assert _relative_error(compiled, eager) <= TOLERANCE


def test_the_gpu_default_fp16_runs_in_half_precision_on_a_cpu_too_within_its_tolerance(tiny_data, cache_dir):
    """``eager-fp16`` is what a GPU gets: fp16 autocast on channels-last tensors. Asked for on
    a CPU, it must compute in half there too, not fp32 under a half name."""
    images = image_array(scan(tiny_data, cache_dir), SIZE, cache_dir)
    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    eager, _ = extract(backbone, images, "eager-fp32", show_progress=False)
    half, used = extract(backbone, images, "eager-fp16", show_progress=False)
    assert used == "eager-fp16" and half.dtype == np.float32 and half.shape == eager.shape
    assert 1e-3 < _relative_error(half, eager) <= HALF_TOLERANCE


def test_compiled_runtimes_keep_to_the_cores_a_ray_task_or_the_user_reserved(monkeypatch):
    """Ray sets ``OMP_NUM_THREADS`` to a task's CPUs; OpenVINO and ONNX Runtime, which do not
    read it themselves, are given that many threads, never more than the process may use."""
    import os

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads() == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads() == 1
    for ignored in ("", "0", "two", str(cores + 8)):
        monkeypatch.setenv("OMP_NUM_THREADS", ignored)
        assert threads() == cores


def test_the_cpu_default_is_openvino_and_the_variable_overrides_it(monkeypatch):
    monkeypatch.delenv("HMD_FEATURE_BACKEND", raising=False)
    assert default_backend() == "openvino-fp32"
    monkeypatch.setenv("HMD_FEATURE_BACKEND", "eager-fp32")
    assert default_backend() == "eager-fp32"
    monkeypatch.setenv("HMD_FEATURE_BACKEND", "tensorrt")
    with pytest.raises(UserError, match="HMD_FEATURE_BACKEND"):
        default_backend()


def test_the_backend_keys_the_feature_cache_and_only_half_precision_keys_the_run(tiny_data, cache_dir):
    dataset = scan(tiny_data, cache_dir)
    onnx = cached_features(dataset, "efficientnet_lite0", SIZE, cache_dir, "onnxruntime-fp32")
    eager = cached_features(dataset, "efficientnet_lite0", SIZE, cache_dir, "eager-fp32")
    files = sorted(p.name for p in (cache_dir / "features").glob("*.npy"))
    assert files == sorted(
        feature_file(cache_dir, dataset, "efficientnet_lite0", SIZE, b).name
        for b in ("onnxruntime-fp32", "eager-fp32")
    )
    assert (onnx.backend, eager.backend) == ("onnxruntime-fp32", "eager-fp32")
    assert _relative_error(onnx.array, eager.array) <= TOLERANCE
    frozen = resolve(quick_run(tiny_data), dataset.median_side)
    as_eager = resolve(quick_run(tiny_data, features="eager-fp32"), dataset.median_side)
    assert (frozen.features, as_eager.features) == ("openvino-fp32", "eager-fp32")
    assert run_id(frozen, dataset.fingerprint) == run_id(as_eager, dataset.fingerprint)
    as_half = resolve(quick_run(tiny_data, features="eager-fp16"), dataset.median_side)
    assert run_id(as_half, dataset.fingerprint) != run_id(frozen, dataset.fingerprint), "fp16 keyed apart"


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_run_ids_are_the_keys_they_were_before_backends_were_recorded(mode):
    """A frozen run's cached eager features and an ONNX Runtime run agree within the
    tolerance: an old cache stays a cache hit (its head was trained by AdamW, the only solver
    then). A fine-tune run reads images: no backend, no solver."""
    solver = "adamw" if mode == "frozen" else None
    config = resolve(
        RunConfig(
            data="/d", backbone="efficientnet_lite0", mode=mode, slice="5%", image_size=64, solver=solver
        ),
        96,
    )
    assert config.features == ("openvino-fp32" if mode == "frozen" else None)
    old_key = {k: v for k, v in config.to_dict().items() if k not in ("features", "solver")}
    old_key |= {"data": "abc", "engine": ENGINE_VERSION}
    expected = hashlib.sha256(json.dumps(old_key, sort_keys=True).encode()).hexdigest()[:12]
    assert run_id(config, "abc") == expected


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_damaged_cached_export_is_exported_again(tiny_data, cache_dir, backend):
    dataset = scan(tiny_data, cache_dir)
    onnx_file = cache_dir / "onnx" / f"efficientnet_lite0-{SIZE}.onnx"
    onnx_file.parent.mkdir(parents=True)
    onnx_file.write_bytes(b"not an onnx model")
    features = cached_features(dataset, "efficientnet_lite0", SIZE, cache_dir, backend)
    assert features.backend == backend
    assert onnx_file.stat().st_size > 1_000_000, "the export was written again, whole"


def _break(monkeypatch, backend: str, calls: list[str]) -> None:
    """Make a runtime fail as it loads the model, counting the attempts."""
    import onnxruntime
    import openvino

    def broken(*args, **kwargs):
        calls.append(backend)
        raise RuntimeError(f"injected: {backend} has no kernel for this node")

    if backend == "openvino-fp32":
        monkeypatch.setattr(openvino.Core, "compile_model", broken)
    else:
        monkeypatch.setattr(onnxruntime, "InferenceSession", broken)


@pytest.mark.parametrize(
    ("broken", "stand_in"),
    [
        (["openvino-fp32"], "onnxruntime-fp32"),
        (["onnxruntime-fp32"], "eager-fp32"),
        (["openvino-fp32", "onnxruntime-fp32"], "eager-fp32"),
    ],
)
def test_a_failing_backend_falls_back_to_the_next_says_so_and_is_not_retried(
    tiny_data, cache_dir, monkeypatch, capfd, broken, stand_in
):
    calls: list[str] = []
    for backend in broken:
        _break(monkeypatch, backend, calls)
    asked = broken[0]
    dataset = scan(tiny_data, cache_dir)
    features = cached_features(dataset, "efficientnet_lite0", SIZE, cache_dir, asked)
    assert features.backend == stand_in
    assert f"warning: {asked} failed (RuntimeError: injected" in capfd.readouterr().err
    assert feature_file(cache_dir, dataset, "efficientnet_lite0", SIZE, stand_in).exists()
    assert not feature_file(cache_dir, dataset, "efficientnet_lite0", SIZE, asked).exists()
    tried = len(calls)
    assert tried >= len(broken)
    again = cached_features(dataset, "efficientnet_lite0", SIZE, cache_dir, asked)
    assert again.backend == stand_in and len(calls) == tried, "a failed backend is not retried"
    assert (
        _relative_error(
            again.array, cached_features(dataset, "efficientnet_lite0", SIZE, cache_dir, "eager-fp32").array
        )
        <= TOLERANCE
    )


@pytest.mark.train
def test_a_run_records_the_backend_that_computed_its_features(tiny_data, cache_dir, tmp_path_factory):
    from core.engine.pipeline import train_run
    from core.store import runs

    summary = train_run(quick_run(tiny_data), cache_dir).summary
    assert summary.config.features == summary.features_backend == "openvino-fp32"
    other = tmp_path_factory.mktemp("eager-cache")
    eager = train_run(dataclasses.replace(quick_run(tiny_data), features="eager-fp32"), other).summary
    assert eager.features_backend == "eager-fp32" and eager.run_id == summary.run_id
    a = runs.load(cache_dir, summary.run_id).predictions().probs
    b = runs.load(other, eager.run_id).predictions().probs
    assert np.abs(a - b).max() <= 1e-3 and (a.argmax(1) == b.argmax(1)).all()
