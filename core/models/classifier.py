"""The classifier every run trains: a pretrained backbone (or none, on cached features) and a
linear head, as a LightningModule. Below the training loop and the run store alike: the store
rebuilds a run's classifier from its weights without importing the loop."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from core.data.augment import batch_mixer

# The head's L2 penalty is HEAD_L2 / n_train * ||W||^2 on the mean loss: logistic regression
# with C=1. Strong on tiny slices, where it keeps 1-image models from being overconfident.
HEAD_L2 = 0.5
WEIGHT_DECAY = 1e-4  # AdamW's, for every path


class Classifier(L.LightningModule):
    """A backbone (or none, when the inputs are cached features) and a linear head."""

    def __init__(
        self,
        backbone: nn.Module | None,
        num_features: int,
        num_classes: int,
        lr: float,
        mode: str,
        aug: str = "none",
        n_train: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        # channels_last for weights and inputs alike: 1.5x faster on CPU, and mixing the two
        # formats (cached NHWC images are channels_last once permuted) is 5x slower still
        self.backbone = None if backbone is None else backbone.to(memory_format=torch.channels_last)
        self.head = nn.Linear(num_features, num_classes)
        self.mixer = batch_mixer(aug, num_classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.backbone is None:
            return self.head(inputs)
        return self.head(self.backbone(inputs.contiguous(memory_format=torch.channels_last)))

    def train(self, mode: bool = True) -> Classifier:
        """Switch modes, keeping a pretrained backbone's BatchNorm in inference mode."""
        super().train(mode)
        if self.backbone is not None and self.hparams.mode != "scratch":
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning sets no module mode itself (modules start in training mode and validation
        # restores per-module flags), so apply the rule above at every epoch.
        self.train()

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict:
        inputs, labels = batch
        targets = labels
        if stage == "train" and self.mixer is not None:
            inputs, targets = self.mixer(inputs, labels)
        logits = self(inputs)
        loss = F.cross_entropy(logits, targets)
        acc = (logits.argmax(1) == labels).float().mean()
        if stage == "val":
            # Training metrics go to MetricsWriter through the returned dict instead: logging
            # them cost 3.5 ms of Python per step here, which a fast GPU step would feel.
            self.log("val_loss", loss, prog_bar=True)
            self.log("val_acc", acc, prog_bar=True)
        penalty = HEAD_L2 / self.hparams.n_train * self.head.weight.pow(2).sum()
        return {"loss": loss + penalty, "ce": loss.detach(), "acc": acc.detach(), "n": len(labels)}

    def training_step(self, batch, batch_idx: int) -> dict:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> dict:
        return self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=WEIGHT_DECAY)
