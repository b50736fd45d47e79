"""Networks and the runtimes that run them: the backbone registry, the classifier (backbone
+ linear head), a network as an ONNX graph, batched inference, and the feature
backends (OpenVINO, ONNX Runtime, eager PyTorch). May import: base, data.
"""
