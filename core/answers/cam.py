"""Grad-CAM overlays for a run's holdout images, computed once and cached as PNG files.

``cache/cams/<run_id>/<method>/<image index>-<class index>.png``, beside it the map itself as a
grey ``.mask.png`` (to measure how alike two classes' maps are), and in ``cache/cams/costs.json``
the seconds per image each method took on this machine (to say before drawing how long it will
take). The model is rebuilt from the run's weights outside Lightning (whose evaluation loops
disable gradients) with gradients on for every parameter, so CAMs work for frozen backbones too.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from core.base.device import best_device, synchronize
from core.base.errors import UserError, check_choice
from core.base.paths import check_writable, read_json, write_atomic, write_json
from core.data.datasets import to_rgb
from core.data.images import cached_array, square, to_tensor
from core.models.backbones import cam_target
from core.models.inference import predict_probs
from core.store import runs

METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
    "layercam": "LayerCAM",
}
TITLES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
    "layercam": "LayerCAM",
}  # as their papers name them, for people
BATCH = 16
GALLERIES = ("misclassified", "correct", "all")
# Methods that run the model once per feature channel of every image (1,280 passes for
# EfficientNet-Lite): seconds to minutes per image on a CPU, where the others take a fraction of
# a second. The page says their estimated time and asks before drawing.
PER_CHANNEL = frozenset({"scorecam"})
# ScoreCAM's masked copies per forward pass: the work between two looks at the cancel flag.
SCORE_BATCH = 16
# Methods that keep only a gradient's positive part (Grad-CAM++: ``np.maximum(grads, 0)`` in
# pytorch-grad-cam's GradCAMPlusPlus; LayerCAM likewise): evidence for a class, never against
# it. Behind a linear head on pooled features their maps for two classes look alike.
POSITIVE_ONLY = frozenset({"gradcam++", "layercam"})

Progress = Callable[[float, int], None]


def check_method(method: str) -> str:
    return check_choice("CAM method", method, METHODS)


def overlay_path(
    cache_dir: Path, rid: str, method: str, index: int, class_index: int, source: str = ""
) -> Path:
    """Where an overlay is cached. ``source``: the fingerprint of another folder the image comes
    from (a second test set); empty for the run's own dataset."""
    return cache_dir / "cams" / rid / method / f"{source + '-' if source else ''}{index}-{class_index}.png"


def mask_path(overlay: Path) -> Path:
    """Where the map behind an overlay is kept, grey levels 0 (no evidence) to 255."""
    return overlay.with_suffix(".mask.png")


def map_correlation(pairs: list[tuple[Path, Path]]) -> float | None:
    """The median pixel correlation between the predicted- and the true-class map of the pairs
    whose classes differ (a right answer's two maps are one map); None where no such pair has
    two maps that vary (a map blue everywhere has no correlation). Near 1: the method draws
    the same map whatever the class, so the pair shows nothing about the mistake."""
    found = []
    for predicted, true in pairs:
        if predicted == true or not (mask_path(predicted).exists() and mask_path(true).exists()):
            continue
        a, b = (np.asarray(Image.open(mask_path(p)), dtype=np.float64).ravel() for p in (predicted, true))
        if a.std() > 0 and b.std() > 0:
            found.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.median(found)) if found else None


def overlays(
    cache_dir: Path,
    rid: str,
    requests: list[tuple[int, int]],
    method: str = "gradcam",
    on_progress: Progress | None = None,
    source: str = "",
) -> list[Path]:
    """Overlay PNGs for (dataset image index, class index) pairs of a run, computing the missing
    ones (a pair asked for twice is computed once). ``on_progress(done, total)`` hears about
    the computing, from (0, total) on, before each of the model's forward passes (``done`` a
    fraction of images then: ScoreCAM makes dozens per image) and after each batch; it is not
    called when every overlay is cached. An exception it raises stops the drawing there, the
    overlays finished so far kept (how a request is cancelled within one pass). With
    ``source`` (a folder's fingerprint) the images are that folder's, as a test set scored them.

    Raises:
        UserError: unknown method, missing run, or the run's cached images were deleted.
        ReadOnly: overlays are missing and writes are switched off here.
    """
    check_method(method)
    paths = [overlay_path(cache_dir, rid, method, i, c, source) for i, c in requests]
    missing = {path: request for request, path in zip(requests, paths, strict=True) if not path.exists()}
    if missing:
        check_writable()  # before the drawing, not after it: a read-only session draws nothing
        _compute(
            runs.load(cache_dir, rid),
            list(missing.items()),
            method,
            on_progress or (lambda done, total: None),
            source,
        )
    return paths


def pair_requests(classes: tuple[str, ...], rows: pd.DataFrame) -> list[tuple[int, int]]:
    """(image, class) pairs for each row of a :func:`gallery` frame: the predicted class, then
    the true one."""
    return [(int(r.image_index), c) for r in rows.itertuples() for c in (classes.index(r.pred), int(r.label))]


def pairs_of(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Overlay paths of :func:`pair_requests`, as (predicted, true) pairs."""
    return list(zip(paths[0::2], paths[1::2], strict=True))


def pair_overlays(
    cache_dir: Path,
    rid: str,
    rows: pd.DataFrame,
    method: str = "gradcam",
    on_progress: Progress | None = None,
) -> list[tuple[Path, Path]]:
    """(predicted-class, true-class) overlays for each row of a :func:`gallery` frame."""
    requests = pair_requests(runs.load(cache_dir, rid).summary.classes, rows)
    return pairs_of(overlays(cache_dir, rid, requests, method, on_progress))


def _compute(
    run: runs.Run,
    missing: list[tuple[Path, tuple[int, int]]],
    method: str,
    on_progress: Progress,
    source: str = "",
) -> None:
    images = source_images(run, source)
    pixels = [images[index] for _, (index, _) in missing]
    drawn = _draw(run, pixels, [c for _, (_, c) in missing], method, on_progress)
    for (path, _), (overlay, mask) in zip(missing, drawn, strict=True):
        grey = np.uint8(np.clip(mask, 0, 1) * 255)
        write_atomic(mask_path(path), lambda handle, g=grey: Image.fromarray(g).save(handle, "PNG"))
        write_atomic(path, lambda handle, o=overlay: Image.fromarray(o).save(handle, "PNG"))


def source_images(run: runs.Run, source: str = "") -> np.ndarray:
    """The images overlays are drawn on: the run's own dataset, or the folder ``source`` names.

    Raises:
        UserError: those cached images were deleted.
    """
    if not source:
        return run.images()

    images = cached_array(source, run.summary.config.image_size, run.cache_dir)
    if images is None:
        raise UserError(f"the cached images of test set {source[:6]} were deleted; score it again")
    return images


def _draw(
    run: runs.Run,
    pixels: list[np.ndarray],
    classes: list[int],
    method: str,
    on_progress: Progress,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(overlay as uint8 RGB, map in 0..1) of each image's CAM for its class, in order, batch by
    batch; each batch's seconds per image are stored for :func:`seconds_per_image`."""
    import pytorch_grad_cam
    import torch
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = run.model().to(best_device())  # grad-cam moves inputs to the model
    model.requires_grad_(True)
    target_layers = [cam_target(model.backbone, run.summary.config.backbone)]
    cam_class = getattr(pytorch_grad_cam, METHODS[method])
    # ScoreCAM runs the model once per feature channel for each image whatever the batch, and
    # holds images x channels masked copies in memory: one image at a time costs nothing extra
    batch = 1 if method in PER_CHANNEL else BATCH
    passes = _Passes(model, target_layers[0], method, on_progress, len(pixels))
    on_progress(0, len(pixels))
    with torch.enable_grad(), cam_class(model=model, target_layers=target_layers) as cam, passes:
        cam.batch_size = SCORE_BATCH  # read by ScoreCAM only
        for start in range(0, len(pixels), batch):
            chunk = np.stack(pixels[start : start + batch])
            targets = [ClassifierOutputTarget(c) for c in classes[start : start + batch]]
            passes.begin(start, len(chunk))
            began = time.monotonic()
            try:
                masks = cam(input_tensor=to_tensor(chunk), targets=targets)
            except torch.OutOfMemoryError:  # a GPU shared with a training run, say
                raise UserError(
                    f"out of GPU memory computing {method} overlays; try another "
                    "method, or again once training has finished"
                ) from None
            _store_cost(run, method, (time.monotonic() - began) / len(chunk))
            for rgb, mask in zip(chunk, masks, strict=True):
                yield show_cam_on_image(rgb.astype(np.float32) / 255, mask, use_rgb=True), mask
            on_progress(start + len(chunk), len(pixels))


class _Passes:
    """Hears every forward pass of the model while a CAM is drawn and reports, before each, how
    far the drawing has got: ScoreCAM's passes over an image's masked copies (one per
    :data:`SCORE_BATCH` channels, after one pass for the activations) move the progress within
    the image, so time left is known from its first batch and a cancel raised by
    ``on_progress`` stops the drawing within one pass."""

    def __init__(
        self, model, layer, method: str, on_progress: Progress, total: int
    ) -> None:  # torch modules: torch is imported late
        self.model, self.layer, self.on_progress, self.total = model, layer, on_progress, total
        self.per_channel = method in PER_CHANNEL
        self.start = self.size = self.seen = self.channels = 0
        self.handles: list = []

    def __enter__(self) -> _Passes:
        self.handles = [
            self.model.register_forward_pre_hook(self._before),
            self.layer.register_forward_hook(self._layer),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()

    def begin(self, start: int, size: int) -> None:
        self.start, self.size, self.seen = start, size, 0

    def _layer(self, module, inputs, output) -> None:
        self.channels = int(output.shape[1])

    def _before(self, module, inputs) -> None:
        expected = 1 + math.ceil(self.channels / SCORE_BATCH) if self.per_channel and self.channels else 1
        share = min(self.seen / expected, 1.0)
        self.seen += 1
        self.on_progress(self.start + self.size * share, self.total)


def _costs_path(cache_dir: Path) -> Path:
    return cache_dir / "cams" / "costs.json"


def _cost_key(run: runs.Run, method: str) -> str:
    """What a method's cost per image depends on: the backbone, the image size, the device."""

    config = run.summary.config
    return f"{config.backbone} {config.image_size}px {best_device().type} {method}"


def _store_cost(run: runs.Run, method: str, seconds: float) -> None:
    path = _costs_path(run.cache_dir)
    write_json(path, _read_costs(path) | {_cost_key(run, method): seconds}, derived=True)


def _read_costs(path: Path) -> dict[str, float]:
    try:
        return read_json(path)
    except (OSError, json.JSONDecodeError):  # none measured yet, or a torn file: measure again
        return {}


def seconds_per_image(cache_dir: Path, rid: str, method: str) -> float:
    """What drawing one overlay with ``method`` costs for this run's model on this machine: the
    last measured drawing's seconds per image, or else (nothing drawn with it yet) timed now
    from one forward pass of :data:`SCORE_BATCH` of its images, times the passes the method
    makes per image (ScoreCAM: one per :data:`SCORE_BATCH` feature channels, plus one).

    Raises:
        UserError: unknown method, or the run is missing or damaged.
    """
    check_method(method)
    run = runs.load(cache_dir, rid)
    known = _read_costs(_costs_path(cache_dir)).get(_cost_key(run, method))
    return known if known is not None else _probe(run, method)


def _probe(run: runs.Run, method: str) -> float:
    import torch

    device = best_device()
    model = run.model().to(device).eval()
    layer = cam_target(model.backbone, run.summary.config.backbone)
    channels: list[int] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: channels.append(output.shape[1]))
    images = to_tensor(np.stack([run.images()[0]] * SCORE_BATCH), device)
    with torch.no_grad():
        model(images)  # the first pass pays for allocation, not for the work
        began = time.monotonic()
        model(images)
        synchronize(device)
        seconds = time.monotonic() - began
    handle.remove()
    if method in PER_CHANNEL:
        return seconds * (1 + math.ceil(channels[0] / SCORE_BATCH))
    return 3 * seconds / SCORE_BATCH  # a forward and a backward pass per image


@dataclass(frozen=True)
class Explained:
    """A run's answer for a new image: its classes by probability and where it looked."""

    pixels: np.ndarray  # the image as the model saw it (square, the run's size)
    top: tuple[tuple[str, float], ...]  # best first
    overlay: np.ndarray  # the CAM for the top class


def explain(
    cache_dir: Path, rid: str, images: list[Image.Image], top: int = 3, method: str = "gradcam"
) -> list[Explained]:
    """Predict new images with a trained run, prepared as its training images were (RGB, the
    shorter side resized to its size, centre-cropped), with the CAM of each top class.

    Raises:
        UserError: unknown method, or the run is missing or damaged.
    """

    check_method(method)
    run = runs.load(cache_dir, rid)
    size, classes = run.summary.config.image_size, run.summary.classes
    pixels = [square(to_rgb(image), size) for image in images]
    probs = predict_probs(run.model(), np.stack(pixels))
    best = [list(np.argsort(-row)[:top]) for row in probs]
    drawn = _draw(run, pixels, [int(order[0]) for order in best], method, lambda done, total: None)
    return [
        Explained(p, tuple((classes[k], float(row[k])) for k in order), overlay)
        for p, row, order, (overlay, _) in zip(pixels, probs, best, drawn, strict=True)
    ]


def gallery(cache_dir: Path, rid: str, which: str = "misclassified", predictions=None) -> pd.DataFrame:
    """The run's holdout predictions (or the ``predictions`` given: a second test set's) to look
    at, least convincing first: misclassified ones (most confidently wrong first), correct ones
    (least confident first), or all."""
    check_choice("image set", which, GALLERIES)
    chosen = predictions if predictions is not None else runs.load(cache_dir, rid).predictions()
    frame = chosen.frame().sort_values("p_true")
    wrong = frame["true"] != frame["pred"]
    return {"misclassified": frame[wrong], "correct": frame[~wrong], "all": frame}[which]


def export_misclassified(cache_dir: Path, rid: str, n: int, method: str, out: Path) -> list[Path]:
    """Write overlays for the predicted and the true class of up to ``n`` misclassified
    holdout images into ``out``; returns the files written."""
    check_writable()
    check_method(method)
    wrong = gallery(cache_dir, rid, "misclassified").head(n)
    pairs = pair_overlays(cache_dir, rid, wrong, method)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, (row, pair) in enumerate(zip(wrong.itertuples(), pairs, strict=True)):
        stem = f"{rank:03d}_{_safe(row.true)}_as_{_safe(row.pred)}_img{row.image_index}"
        for which, source in zip(("pred", "true"), pair, strict=True):
            target = out / f"{stem}_{method}_{which}.png"
            target.write_bytes(source.read_bytes())
            written.append(target)
    return written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


@dataclass(frozen=True)
class SliceCam:
    """One run's view of one holdout image: its slice, its prediction, its CAM for the true class."""

    slice: str
    run_id: str
    images_per_class: float
    true: str
    predicted: str
    p_true: float
    overlay: Path

    @property
    def right(self) -> bool:
        return self.true == self.predicted


def first_runs(summaries) -> list:
    """One run per slice, the first sample and training seeds of each, smallest slice first."""
    first = {}
    for summary in sorted(summaries, key=lambda s: (s.n_train, s.config.sample_seed, s.config.seed)):
        first.setdefault(summary.config.slice, summary)
    return list(first.values())


def showcase_run(summaries):
    """The run whose mistakes are shown first, on the Grad-CAM page and in the report alike: the
    largest slice's run with the first seeds, the best model the experiment has."""
    return first_runs(summaries)[-1]


def across_slices(cache_dir: Path, summaries, image_index: int, method: str = "gradcam") -> list[SliceCam]:
    """The CAM for the true class of one holdout image from each slice's run (see
    :func:`first_runs`), smallest slice first: how where the model looks changes as labels are
    added. ``summaries`` are the runs of one experiment (they share the holdout)."""
    check_method(method)
    found = []
    for summary in first_runs(summaries):
        predictions = runs.load(cache_dir, summary.run_id).predictions()
        row = int(np.flatnonzero(predictions.image_index == image_index)[0])
        label = int(predictions.labels[row])
        [overlay] = overlays(cache_dir, summary.run_id, [(image_index, label)], method)
        found.append(
            SliceCam(
                summary.config.slice,
                summary.run_id,
                summary.n_train / len(summary.classes),
                summary.classes[label],
                summary.classes[int(predictions.predicted[row])],
                float(predictions.p_true[row]),
                overlay,
            )
        )
    return found


def animation(frames: list[SliceCam], seconds: float = 0.9) -> bytes:
    """The CAMs across slices as one looping GIF, each frame captioned with its slice."""
    from PIL import ImageDraw

    pictures = []
    for frame in frames:
        picture = Image.open(frame.overlay).convert("RGB").resize((224, 224), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (224, 250), "white")
        canvas.paste(picture, (0, 0))
        verdict = "right" if frame.right else f"says {frame.predicted}"
        ImageDraw.Draw(canvas).text(
            (6, 230), f"{frame.slice}: {frame.p_true:.0%} for {frame.true}, {verdict}", fill="black"
        )
        pictures.append(canvas)
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, "GIF", save_all=True, append_images=pictures[1:], duration=int(seconds * 1000), loop=0
    )
    return buffer.getvalue()


def colour_scale(width: int = 320, height: int = 14) -> np.ndarray:
    """The overlays' colour map as a horizontal bar (uint8 RGB), none (blue) to strong (red)."""
    import cv2

    ramp = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    return cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


READING_GUIDE = (
    "Red marks where the image holds evidence for the class named under the map, blue where it holds none. "
    "A map blue everywhere means the model found no evidence for that class anywhere: common for the true "
    "class of a confident mistake. A right answer whose red sits on the background is right for the wrong "
    "reason."
)
