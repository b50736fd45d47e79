"""Lightning training: the classifier module, the data module, freezing, and the metrics writer.

Three modes:

- ``frozen``: a new linear head on a frozen pretrained backbone (feature extraction). With no
  augmentation the head trains on cached features (:mod:`core.features`); otherwise images
  go through the frozen backbone each step.
- ``finetune``: the head first, then the backbone's top layers (the registry's
  ``finetune_layers``) are unfrozen with a 10x lower learning rate.
- ``scratch``: the whole network from random initialisation.

A frozen or fine-tuned backbone keeps its BatchNorm layers in inference mode: with a handful of
images per batch, batch statistics would wreck the pretrained running statistics.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BaseFinetuning, Callback
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from core.augment import batch_mixer, image_transform
from core.backbones import get_spec
from core.device import lightning_precision
from core.errors import RunCancelled
from core.record import Progress, metrics_line, write_progress
from core.runs import RunFolder

BACKBONE_LR_FACTOR = 0.1
# An epoch is at least this many batches: a tiny slice is passed over several times (reshuffled
# each pass), so a 1-image-per-class run gets enough optimizer steps to converge.
MIN_STEPS_PER_EPOCH = 8
# The head's L2 penalty is HEAD_L2 / n_train * ||W||^2 on the mean loss: logistic regression
# with C=1. Strong on tiny slices, where it keeps 1-image models from being overconfident.
HEAD_L2 = 0.5


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
        return torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=1e-4)


class FreezeBackbone(BaseFinetuning):
    """Freeze the pretrained backbone; for fine-tuning, unfreeze its top layers at an epoch."""

    def __init__(self, layers: tuple[str, ...] = (), unfreeze_at_epoch: int | None = None) -> None:
        super().__init__()
        self.layers = layers
        self.unfreeze_at_epoch = unfreeze_at_epoch

    def freeze_before_training(self, pl_module: Classifier) -> None:
        self.freeze(pl_module.backbone, train_bn=False)

    def finetune_function(self, pl_module: Classifier, epoch: int, optimizer) -> None:
        if epoch == self.unfreeze_at_epoch:
            self.unfreeze_and_add_param_group(
                modules=[pl_module.backbone.net.get_submodule(path) for path in self.layers],
                optimizer=optimizer,
                lr=pl_module.hparams.lr * BACKBONE_LR_FACTOR,
                train_bn=False,
            )


class MetricsWriter(Callback):
    """Append per-step and per-epoch metrics to ``metrics.jsonl`` and progress to
    ``progress.json`` while the run trains, so another process can draw live curves; stop when
    ``cancel_file`` appears.

    Step values stay tensors until they are written, every ``every_s`` seconds: reading a GPU
    value makes the CPU wait for the GPU, and doing so every step would keep it from queueing
    the next step while the GPU works.
    """

    def __init__(self, folder: RunFolder, cancel_file: Path, every_s: float = 0.5) -> None:
        self.folder = folder
        self.cancel_file = cancel_file
        self.every_s = every_s
        self._file = None
        self._last = 0.0
        self._started = 0.0
        self._pending: list[tuple[dict, torch.Tensor, int]] = []  # record, (loss, acc), n
        self._sums = np.zeros(3)  # loss * n, correct, n over this epoch's training batches

    def on_fit_start(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        # held open across callbacks, closed in teardown or on an exception
        self._file = open(self.folder.metrics, "a", buffering=1)  # noqa: SIM115
        self._started = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self._flush()
        self._sums[:] = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Classifier, outputs, batch, batch_idx: int
    ) -> None:
        record = {"step": trainer.global_step, "epoch": trainer.current_epoch, "t": self._elapsed()}
        self._pending.append((record, torch.stack((outputs["ce"], outputs["acc"])), outputs["n"]))
        if self.cancel_file.exists():
            self._flush()
            raise RunCancelled(f"run {self.folder.run_id} cancelled")
        if time.monotonic() - self._last > self.every_s:
            self._flush()
            self._progress(trainer)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        if trainer.sanity_checking:
            return
        self._flush()
        if not self._sums[2]:
            return
        metrics = trainer.callback_metrics
        loss_sum, correct, n = self._sums
        self._write(
            "epoch",
            {
                "step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "train_loss": loss_sum / n,
                "train_acc": correct / n,
                "val_loss": float(metrics["val_loss"]),
                "val_acc": float(metrics["val_acc"]),
                "t": self._elapsed(),
            },
        )
        self._progress(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self._flush()
        self._progress(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: Classifier, exception: BaseException) -> None:
        # a broken GPU may not give its values back, a full disk may not take them: the error
        # that stopped training is the one to report
        with contextlib.suppress(RuntimeError, OSError):
            self._flush()
            self._close()

    def teardown(self, trainer: L.Trainer, pl_module: Classifier, stage: str) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 4)  # seconds since fit started

    def _flush(self) -> None:
        """Write the pending step records, reading their values back in one go."""
        if not self._pending:
            return
        values = torch.stack([pair for _, pair, _ in self._pending]).float().tolist()
        for (record, _, n), (loss, acc) in zip(self._pending, values, strict=True):
            self._sums += (loss * n, acc * n, n)
            self._write("step", {**record, "train_loss": loss, "train_acc": acc})
        self._pending.clear()

    def _write(self, kind: str, values: dict) -> None:
        self._file.write(metrics_line(kind, values))

    def _progress(self, trainer: L.Trainer) -> None:
        self._last = time.monotonic()
        write_progress(
            self.folder.progress,
            Progress.measure(
                trainer.current_epoch,
                trainer.max_epochs,
                trainer.global_step,
                trainer.estimated_stepping_batches,
                self._last - self._started,
            ),
        )


class ImageSet(Dataset):
    """Cached uint8 images (memory-mapped N x H x W x 3) selected by index, transformed."""

    def __init__(self, images: np.ndarray, indices: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.indices, self.labels, self.transform = images, indices, labels, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        index = self.indices[i]
        image = torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1)
        return self.transform(image), int(self.labels[index])


class Rows(Dataset):
    """Feature rows and their labels, fetched a batch at a time: one indexing operation per
    batch instead of one per row and a stack (the same values; a 4,000-image run spent half its
    time on that Python loop)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.features[index], self.labels[index]


def _whole_batch(batch):
    """The collate function of :class:`Rows`: its batch is already collated."""
    return batch


@dataclass
class SliceData(L.LightningDataModule):
    """Training slice and fixed validation set, as cached features or as cached images."""

    train_set: Dataset
    val_set: Dataset
    batch_size: int
    seed: int
    workers: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        samples = max(len(self.train_set), MIN_STEPS_PER_EPOCH * self.batch_size)
        sampler = RandomSampler(self.train_set, num_samples=samples, generator=generator)
        return self._loader(self.train_set, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, max(self.batch_size, 256))

    def _loader(self, dataset: Dataset, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=_whole_batch if isinstance(dataset, Rows) else None,
        )


def feature_data(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray, batch_size: int, seed: int
) -> SliceData:
    def subset(indices: np.ndarray) -> Rows:
        return Rows(torch.from_numpy(features[indices]), torch.from_numpy(labels[indices]))

    return SliceData(subset(train), subset(val), batch_size, seed)


def image_data(
    images: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    aug: str,
    batch_size: int,
    seed: int,
    workers: int,
) -> SliceData:
    size = images.shape[1]
    return SliceData(
        ImageSet(images, train, labels, image_transform(aug, size)),
        ImageSet(images, val, labels, image_transform("none", size)),
        batch_size,
        seed,
        workers,
    )


def quiet_lightning() -> None:
    """Keep Lightning's start-up banners and tips off stdout (the CLI's ``--json`` lives there)."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def fit(
    model: Classifier,
    data: SliceData,
    epochs: int,
    folder: RunFolder,
    backbone_name: str,
    cancel_file: Path,
    show_progress: bool = False,
) -> Classifier:
    """Train ``model`` with Lightning, writing metrics into the run's ``folder`` as it goes."""
    quiet_lightning()
    callbacks: list[Callback] = [MetricsWriter(folder, cancel_file)]
    mode = model.hparams.mode
    if model.backbone is not None and mode != "scratch":
        spec = get_spec(backbone_name)
        unfreeze = max(1, epochs // 3) if mode == "finetune" else None
        callbacks.append(FreezeBackbone(spec.finetune_layers, unfreeze))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        devices=1,
        precision=lightning_precision(),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=show_progress and sys.stderr.isatty(),
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(model, datamodule=data)
    return model.cpu().eval()
