"""Grad-CAM overlays for a run's holdout images, computed once and cached as PNG files.

``cache/cams/<run_id>/<method>/<image index>-<class index>.png``. The model is rebuilt from the
run's weights outside Lightning (whose evaluation loops disable gradients) with gradients on
for every parameter, so CAMs work for frozen backbones too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core import runs
from core.errors import UserError
from core.images import cached_array
from core.paths import read_json, write_atomic

METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
    "layercam": "LayerCAM",
}
BATCH = 16


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"unknown CAM method '{method}'; choose one of: {', '.join(METHODS)}")
    return method


def overlay_path(cache_dir: Path, rid: str, method: str, index: int, class_index: int) -> Path:
    return cache_dir / "cams" / rid / method / f"{index}-{class_index}.png"


def overlays(cache_dir: Path, rid: str, requests: list[tuple[int, int]], method: str = "gradcam",
             on_progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Overlay PNGs for (dataset image index, class index) pairs of a run, computing the missing
    ones (a pair asked for twice is computed once). ``on_progress(done, total)`` hears about
    the computing, from (0, total) on; it is not called when every overlay is cached.

    Raises:
        UserError: unknown method, missing run, or the run's cached images were deleted.
    """
    check_method(method)
    paths = [overlay_path(cache_dir, rid, method, i, c) for i, c in requests]
    missing = {path: request for request, path in zip(requests, paths, strict=True)
               if not path.exists()}
    if missing:
        backbone = read_json(runs.find_run(cache_dir, rid) / "config.json")["config"]["backbone"]
        _compute(cache_dir, rid, backbone, run_images(cache_dir, rid), list(missing.items()),
                 method, on_progress or (lambda done, total: None))
    return paths


def run_images(cache_dir: Path, rid: str) -> np.ndarray:
    """The run's dataset as it saw it (uint8 N x S x S x 3, dataset order), from the cache.

    Raises:
        UserError: the run or its cached images were deleted.
    """
    record = read_json(runs.find_run(cache_dir, rid) / "config.json")
    images = cached_array(record["fingerprint"], record["config"]["image_size"], cache_dir)
    if images is None:
        raise UserError(f"the cached images of run {rid} were deleted; run it again to rebuild them")
    return images


def _compute(cache_dir: Path, rid: str, backbone_name: str, images: np.ndarray,
             missing: list[tuple[Path, tuple[int, int]]], method: str,
             on_progress: Callable[[int, int], None]) -> None:
    import pytorch_grad_cam
    import torch
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from core.backbones import cam_target
    from core.device import best_device
    from core.images import to_tensor
    from core.pipeline import load_model

    model = load_model(cache_dir, rid).to(best_device())  # grad-cam moves inputs to the model
    model.requires_grad_(True)
    target_layers = [cam_target(model.backbone, backbone_name)]
    cam_class = getattr(pytorch_grad_cam, METHODS[method])
    # ScoreCAM runs the model once per feature channel for each image whatever the batch, and
    # holds images x channels masked copies in memory: one image at a time costs nothing extra
    batch = 1 if method == "scorecam" else BATCH
    on_progress(0, len(missing))
    with torch.enable_grad(), cam_class(model=model, target_layers=target_layers) as cam:
        for start in range(0, len(missing), batch):
            chunk = missing[start:start + batch]
            pixels = np.stack([images[index] for _, (index, _) in chunk])
            try:
                masks = cam(input_tensor=to_tensor(pixels),
                            targets=[ClassifierOutputTarget(c) for _, (_, c) in chunk])
            except torch.OutOfMemoryError:  # a GPU shared with a training run, say
                raise UserError(f"out of GPU memory computing {method} overlays; try another "
                                "method, or again once training has finished") from None
            for rgb, mask, (path, _) in zip(pixels, masks, chunk, strict=True):
                overlay = show_cam_on_image(rgb.astype(np.float32) / 255, mask, use_rgb=True)
                write_atomic(path, lambda handle, o=overlay: Image.fromarray(o).save(handle, "PNG"))
            on_progress(start + len(chunk), len(missing))


def gallery(cache_dir: Path, rid: str, which: str = "misclassified"):
    """The run's holdout predictions to look at, least convincing first: misclassified ones
    (most confidently wrong first), correct ones (least confident first), or all."""
    frame = runs.load_predictions(runs.find_run(cache_dir, rid)).sort_values("p_true")
    wrong = frame["true"] != frame["pred"]
    return {"misclassified": frame[wrong], "correct": frame[~wrong], "all": frame}[which]


def misclassified(cache_dir: Path, rid: str, n: int | None = None):
    """The run's misclassified holdout predictions, most confidently wrong first."""
    wrong = gallery(cache_dir, rid, "misclassified")
    return wrong if n is None else wrong.head(n)


def export_misclassified(cache_dir: Path, rid: str, n: int, method: str, out: Path) -> list[Path]:
    """Write overlays for the predicted and the true class of up to ``n`` misclassified
    holdout images into ``out``; returns the files written."""
    check_method(method)
    wrong = misclassified(cache_dir, rid, n)
    classes = read_json(runs.find_run(cache_dir, rid) / "config.json")["classes"]
    requests = []
    for row in wrong.itertuples():
        requests += [(row.image_index, classes.index(row.pred)), (row.image_index, row.label)]
    sources = overlays(cache_dir, rid, requests, method)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, row in enumerate(wrong.itertuples()):
        stem = f"{rank:03d}_{_safe(row.true)}_as_{_safe(row.pred)}_img{row.image_index}"
        for which, source in zip(("pred", "true"), sources[2 * rank:2 * rank + 2], strict=True):
            target = out / f"{stem}_{method}_{which}.png"
            target.write_bytes(source.read_bytes())
            written.append(target)
    return written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
