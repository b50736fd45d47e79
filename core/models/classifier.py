"""The LightningModule every run trains: the :class:`~core.models.network.Network` with its loss,
the head's L2 penalty and its optimizer. Below the training loop; the run store rebuilds a
trained run as a plain Network, without Lightning."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from core.data.augment import batch_mixer
from core.models.network import Network

# The head's L2 penalty is HEAD_L2 / n_train * ||W||^2 on the mean loss: logistic regression
# with C=1. Strong on tiny slices, where it keeps 1-image models from being overconfident.
HEAD_L2 = 0.5
WEIGHT_DECAY = 1e-4  # AdamW's, for every path


class Classifier(Network, L.LightningModule):
    """The :class:`Network` with its training step, loss and optimizer for Lightning."""

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
        super().__init__(backbone, num_features, num_classes, mode)
        self.save_hyperparameters(ignore=["backbone"])
        self.mixer = batch_mixer(aug, num_classes)

    def on_train_epoch_start(self) -> None:
        # Lightning sets no module mode itself (modules start in training mode and validation
        # restores per-module flags), so apply the Network's BatchNorm rule at every epoch.
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
