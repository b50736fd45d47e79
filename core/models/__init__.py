"""Networks and the runtimes that run them: the backbone registry, the network (backbone +
linear head, plain torch) and the LightningModule that trains it, a network as an ONNX graph,
batched inference, and the feature backends (OpenVINO, ONNX Runtime, eager PyTorch). May
import: base, data.
"""
