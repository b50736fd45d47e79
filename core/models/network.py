"""The network a run trains and every page infers with: a pretrained backbone (or none, on cached
features) and a linear head, in plain torch.

Apart from the LightningModule that trains it (:mod:`core.models.classifier`), so that loading a
run for inference (Grad-CAM, the Predict page, scoring a pool) does not import Lightning: about
1.8 s of CPU that every CAM worker and scoring process would otherwise pay before its first image.
"""

from __future__ import annotations

import torch
from torch import nn


class Network(nn.Module):
    """A backbone (or none, when the inputs are cached features) and a linear head.

    ``mode`` is the run's training mode: a pretrained backbone (any mode but ``scratch``) keeps
    its BatchNorm in inference mode even while training.
    """

    def __init__(self, backbone: nn.Module | None, num_features: int, num_classes: int, mode: str) -> None:
        super().__init__()
        self.pretrained = mode != "scratch"
        # channels_last for weights and inputs alike: 1.5x faster on CPU, and mixing the two
        # formats (cached NHWC images are channels_last once permuted) is 5x slower still
        self.backbone = None if backbone is None else backbone.to(memory_format=torch.channels_last)
        self.head = nn.Linear(num_features, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.backbone is None:
            return self.head(inputs)
        return self.head(self.backbone(inputs.contiguous(memory_format=torch.channels_last)))

    def train(self, mode: bool = True) -> Network:
        """Switch modes, keeping a pretrained backbone's BatchNorm in inference mode."""
        super().train(mode)
        if self.backbone is not None and self.pretrained:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self
