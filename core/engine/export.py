"""Export a run's whole network (float32 N x 3 x S x S RGB in 0..1 in, logits out; normalised
inside) to ONNX or TorchScript, with its :class:`ModelCard` beside it as ``<out>.json``
(``model.onnx`` -> ``model.onnx.json``: two formats of one run can share a folder).

An export is kept only once the exported file itself, run by onnxruntime or ``torch.jit.load``
(:func:`load_exported`), reproduces the run's ``predictions.csv`` on its holdout images: same
argmax on every image, probabilities within :data:`TOLERANCE`. An exporter that silently changed
the network would otherwise ship a model other than the one that was scored.

A run scored on a GPU wrote probabilities computed in float16 autocast: on an H200 they lay up to
0.015 from the same network in float32 (a 3-epoch fine-tune, 500 holdout images), and an image
near a tie can change class that way. Its export is checked against the network in float32 on the
CPU instead, to the same tolerance, and the card states how far predictions.csv lies from that.
"""

from __future__ import annotations

import io
import tomllib
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from core.base.errors import UserError, check_choice
from core.base.paths import PROJECT_ROOT, read_json, write_atomic, write_json
from core.models.backbones import get_spec
from core.models.feature_backends import runtime_errors
from core.models.onnx_graph import INPUT_NAME, OUTPUT_NAME, onnx_bytes
from core.store import runs
from core.store.record import Predictions, Summary

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}  # the usual file name endings
TOLERANCE = 1e-4  # largest |difference| of a probability from predictions.csv
# how far a float16 predictions.csv may lie from its network in float32 (0.015 measured on an
# H200): beyond it, the file is not this network's, and no export of it is kept
FLOAT16_DRIFT = 0.05
BATCH = 64
SIZE_FILE = "input_size"  # extra file inside a TorchScript archive: the image side it takes


class ExportMismatch(UserError):
    """The exported model does not reproduce the run's holdout predictions."""


@dataclass(frozen=True)
class Verification:
    """How an exported model was checked against its run's holdout predictions (:func:`verify`)."""

    images: int
    argmax_agreement: float
    max_abs_prob_diff: float
    tolerance: float
    runtime: str
    # a run scored in float16 on a GPU: how far its predictions.csv lies from the network in
    # float32, which the export was checked against instead, and on how many images the class differs
    float16_drift: float | None = None
    float16_class_changes: int | None = None

    def sentence(self) -> str:
        """What the page and the CLI say of it."""
        checked = (
            f"verified on {self.images} holdout images, the same class on every one, probabilities "
            f"within {self.max_abs_prob_diff:.1e} of "
        )
        if self.float16_drift is None:
            return checked + "the run's predictions.csv"
        return checked + (
            f"the run's network in float32 (its predictions.csv, scored in float16 on a GPU, lies up "
            f"to {self.float16_drift:.1e} from it, with {self.float16_class_changes} images of "
            "another class)"
        )


@dataclass(frozen=True)
class ModelCard:
    """What a person needs to run an exported model and to know what it is (``<out>.json``)."""

    run_id: str
    format: str
    file: str  # the model's file name, in the card's folder
    classes: tuple[str, ...]
    input: dict
    output: dict
    slice: str
    seed: int
    sample_seed: int
    backbone: str
    mode: str
    holdout_accuracy: float
    n_holdout: int
    thresholds: list[dict]
    tool_version: str
    verified: Verification

    def to_dict(self) -> dict:
        """The card's JSON: this dict, written to ``<model file>.json`` beside the model."""
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        return cls(
            **{**data, "classes": tuple(data["classes"]), "verified": Verification(**data["verified"])}
        )


def read_card(out: Path) -> ModelCard | None:
    """The card beside an exported model, or None when the model or its card is missing.

    Raises:
        UserError: the card is damaged.
    """
    if not (out.exists() and card_path(out).exists()):
        return None
    try:
        return ModelCard.from_dict(read_json(card_path(out)))
    except (ValueError, TypeError, KeyError) as error:
        raise UserError(f"the card {card_path(out)} is damaged ({error}); export the run again") from None


@dataclass(frozen=True)
class ExportedModel:
    """An exported model loaded for inference: uint8 N x S x S x 3 RGB images -> probabilities."""

    size: int
    runtime: str
    logits: Callable[[np.ndarray], np.ndarray]  # float32 N x 3 x S x S in 0..1 -> N x C

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Probabilities, N x C float64, in batches (memory); UserError for images of another shape."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (self.size, self.size, 3):
            raise UserError(
                f"images of shape {images.shape} ({images.dtype}) do not fit this model; give uint8 "
                f"N x {self.size} x {self.size} x 3 RGB, resized and centre-cropped as its card says"
            )
        chunks = [
            self.logits(np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255))
            for chunk in (images[start : start + BATCH] for start in range(0, len(images), BATCH))
        ]
        if not chunks:
            return np.zeros((0, 0))
        logits = np.concatenate(chunks).astype(np.float64)
        exp = np.exp(logits - logits.max(1, keepdims=True))
        return exp / exp.sum(1, keepdims=True)


def card_path(out: Path) -> Path:
    """Where the card of a model exported to ``out`` is written: ``<out>.json``."""
    return out.with_name(out.name + ".json")


def tool_version() -> str:
    """This tool's version, as ``pyproject.toml`` states it."""
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def load_exported(path: Path) -> ExportedModel:
    """An exported model (ONNX or TorchScript, told apart by content) ready to run on the CPU.

    Raises:
        UserError: no file at ``path``, it is neither format, or onnxruntime is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no exported model at {path}; export one with python -m core export")
    if zipfile.is_zipfile(path):  # TorchScript archives are zip files, ONNX files protobuf
        return _load_torchscript(path)
    try:
        import onnxruntime
    except ImportError:
        raise UserError("onnxruntime is not installed; pip install onnxruntime to run ONNX models") from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except runtime_errors() as error:
        cause = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path} is neither an ONNX nor a TorchScript model ({cause})") from None
    name = session.get_inputs()[0].name
    return ExportedModel(
        size=int(session.get_inputs()[0].shape[-1]),
        runtime=f"onnxruntime {onnxruntime.__version__}",
        logits=lambda batch: session.run(None, {name: batch})[0],
    )


def _load_torchscript(path: Path) -> ExportedModel:
    import torch

    extra = {SIZE_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still supported
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
        size = int(extra[SIZE_FILE])  # b"" in an archive this module did not write
    except (RuntimeError, ValueError) as error:
        cause = str(error).splitlines()[0][:120]
        raise UserError(f"{path} is not a model exported by python -m core export ({cause})") from None

    def logits(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).numpy()

    return ExportedModel(size=size, runtime=f"torch.jit {torch.__version__}", logits=logits)


def verify(
    model: ExportedModel, images: np.ndarray, predictions: Predictions, tolerance: float = TOLERANCE
) -> Verification:
    """Check an exported model against a run's holdout predictions (``images`` in their order).

    Raises:
        ExportMismatch: a predicted class differs, or a probability by more than ``tolerance``.
    """
    probs, expected = model(images), predictions.probs
    same = probs.shape == expected.shape  # a model of other classes than the run's never is
    agree = probs.argmax(1) == expected.argmax(1) if same else np.zeros(len(probs), bool)
    diff = float(np.abs(probs - expected).max(initial=0.0)) if same else float("inf")
    if not agree.all() or diff > tolerance:
        raise ExportMismatch(
            f"the exported model does not reproduce predictions.csv: {int((~agree).sum())} of "
            f"{len(agree)} holdout images change class, probabilities differ by up to {diff:.2g} "
            f"(allowed {tolerance:g}); the export was not kept"
        )
    return Verification(len(agree), 1.0, diff, tolerance, model.runtime)


def _with_float16_drift(
    found: Verification, reference: Predictions, predictions: Predictions, what: str
) -> Verification:
    """``found`` with how far the run's float16 ``predictions`` lie from its float32 network.

    Raises:
        ExportMismatch: further than :data:`FLOAT16_DRIFT`: predictions.csv is another network's.
    """
    drift = float(np.abs(reference.probs - predictions.probs).max(initial=0.0))
    if drift > FLOAT16_DRIFT:
        raise ExportMismatch(
            f"{what} refused: the run's predictions.csv does not come from its network: "
            f"probabilities differ by up to {drift:.2g} (float16 on a GPU explains up to "
            f"{FLOAT16_DRIFT:g}); the export was not kept"
        )
    changes = int((reference.predicted != predictions.predicted).sum())
    return replace(found, float16_drift=drift, float16_class_changes=changes)


def _float32(network, images: np.ndarray, predictions: Predictions) -> Predictions:
    """``predictions`` with the probabilities of ``network`` in float32 on the CPU: what an export
    of a run scored in float16 on a GPU must reproduce."""
    import torch

    network = network.to("cpu").float()

    def logits(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(batch)).numpy()

    size = images.shape[1]
    return replace(predictions, probs=ExportedModel(size, "torch float32", logits)(images))


def _network(model):
    """The classifier as a plain module, images in and logits out (tracing a LightningModule
    trips over its ``trainer`` property). Inputs go channels_last like the weights, as in training
    and scoring: ONNX ignores layouts; TorchScript runs 1.15x faster on a CPU (Lite0, 64 px)."""
    import torch
    from torch import nn

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone, self.head = model.backbone, model.head

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(images.contiguous(memory_format=torch.channels_last)))

    return Network().eval()


def _serialise(network, fmt: str, size: int) -> bytes:
    """The exported file's bytes, with a dynamic batch size and the run's image size fixed."""
    if fmt == "onnx":
        return onnx_bytes(network, size)
    import torch

    buffer = io.BytesIO()
    # tracing warns that shapes become constants: fine here, the verification is the judge
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(network, torch.zeros(2, 3, size, size), check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={SIZE_FILE: str(size)})
    return buffer.getvalue()


def export(cache_dir: Path, run_id: str, fmt: str, out: Path) -> ModelCard:
    """Export a complete run's network to ``out`` and its card to ``<out>.json``, verified first:
    the model is written to a temporary file, checked, and only then renamed to ``out``.

    Raises:
        UserError: unknown format, ``out`` is a folder, or the run is missing or damaged.
        ExportMismatch: the exported model does not reproduce the run's predictions (``out`` is
            left as it was).
    """
    check_choice("export format", fmt, FORMATS)
    out = Path(out)
    if out.is_dir():
        raise UserError(
            f"--out {out} is a folder; give a file path such as {out / ('model' + SUFFIXES[fmt])}"
        )
    run = runs.load(cache_dir, run_id)
    summary, config = run.summary, run.summary.config
    predictions = run.predictions()
    images = np.asarray(run.images()[predictions.image_index])
    network = _network(run.model())
    reference = _float32(network, images, predictions) if summary.device == "cuda" else predictions
    verified: list[Verification] = []  # set by the write, once the model checks out

    def write_verified(handle) -> None:
        handle.write(_serialise(network, fmt, config.image_size))
        handle.flush()
        what = f"export of run {run_id} to {out}"
        try:
            found = verify(load_exported(Path(handle.name)), images, reference)
        except ExportMismatch as error:
            raise ExportMismatch(f"{what} refused: {error}") from None
        if reference is not predictions:
            found = _with_float16_drift(found, reference, predictions, what)
        verified.append(found)
        card_path(out).unlink(missing_ok=True)  # never the new model beside an old model's card

    write_atomic(out, write_verified)
    card = ModelCard(**run_card(summary), format=fmt, file=out.name, verified=verified[0])
    write_json(card_path(out), card.to_dict())
    return card


def run_card(summary: Summary) -> dict:
    """The fields of a :class:`ModelCard` that describe the run rather than an exported file:
    what the network takes and gives, what it was trained on, how it scored. One source for the
    card beside an exported model and the card a tracker keeps with the run."""
    config = summary.config
    spec, size = get_spec(config.backbone), config.image_size
    return {
        "run_id": summary.run_id,
        "classes": summary.classes,
        "input": {
            "name": INPUT_NAME,
            "shape": [None, 3, size, size],
            "dtype": "float32",
            "range": [0, 1],
            "channel_order": "RGB",
            "layout": "NCHW",
            "resize": f"shorter side to {size} px (bicubic), then the centre {size} x {size} crop",
            "normalisation": {
                "mean": list(spec.mean),
                "std": list(spec.std),
                "applied_inside_the_model": True,
            },
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, len(summary.classes)],
            "kind": "logits",
            "softmax": "apply softmax over axis 1 for probabilities",
            "classes_order": "column i is classes[i]",
        },
        "slice": config.slice,
        "seed": config.seed,
        "sample_seed": config.seed if config.sample_seed is None else config.sample_seed,
        "backbone": config.backbone,
        "mode": config.mode,
        "holdout_accuracy": summary.accuracy,
        "n_holdout": summary.n_holdout,
        # NaN (no image above a threshold) as null: NaN is not JSON, and other tools reject it
        "thresholds": [
            {k: None if v != v else v for k, v in asdict(t).items()} for t in summary.holdout.thresholds
        ],
        "tool_version": tool_version(),
    }
