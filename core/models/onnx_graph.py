"""A network as an ONNX graph: what the exported model and the ONNX-based feature backends
both load. A module of its own, below both, so that computing features never imports the
export of runs (which reads the run store, which reads configurations)."""

from __future__ import annotations

import io
import warnings

OPSET = 17  # 2022's: current runtimes read it, and the graph uses only old ops (Conv, Pad, Gemm)
INPUT_NAME, OUTPUT_NAME = "images", "logits"


def onnx_bytes(network, size: int) -> bytes:
    """``network`` (images in) as an ONNX model with a dynamic batch size and ``size`` px images
    (TF-style "same" padding in EfficientNet-Lite is computed for that size)."""
    import torch

    buffer = io.BytesIO()
    # the legacy exporter warns that it is deprecated: the dynamo one needs onnxscript
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network.eval(),
            (torch.zeros(2, 3, size, size),),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return buffer.getvalue()
