"""Lightning training: the classifier module, the data module, freezing, and the metrics writer.

Three modes:

- ``frozen``: a new linear head on a frozen pretrained backbone (feature extraction). With no
  augmentation the head trains on cached features (:mod:`core.engine.features`), stacked with the
  other heads of a sweep (:class:`Heads`); otherwise images go through the frozen backbone
  each step.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BaseFinetuning, Callback
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from core.base.device import lightning_precision
from core.base.errors import RunCancelled
from core.data.augment import image_transform
from core.models.backbones import get_spec
from core.models.classifier import HEAD_L2, WEIGHT_DECAY, Classifier
from core.store.record import Progress, metrics_line, write_progress
from core.store.runs import RunFolder

BACKBONE_LR_FACTOR = 0.1
# An epoch is at least this many batches: a tiny slice is passed over several times (reshuffled
# each pass), so a 1-image-per-class run gets enough optimizer steps to converge.
MIN_STEPS_PER_EPOCH = 8
VAL_BATCH = 1024  # rows of features per validation batch


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


class RunLog:
    """A run's live record while it trains: step and epoch metrics appended to
    ``metrics.jsonl``, progress to ``progress.json``, so another process can draw live curves.

    Step values stay tensors until they are written, every ``every_s`` seconds: reading a GPU
    value makes the CPU wait for the GPU, and doing so every step would keep it from queueing
    the next step while the GPU works.
    """

    def __init__(self, folder: RunFolder, every_s: float = 0.5) -> None:
        self.folder = folder
        self.every_s = every_s
        self.steps = 0  # optimizer steps taken
        self._file = None
        self._last = 0.0
        self._started = 0.0
        self._pending: list[tuple[dict, torch.Tensor, int]] = []  # record, (loss, acc), n
        self._sums = np.zeros(3)  # loss * n, correct, n over this epoch's training batches

    def open(self) -> None:
        # held open across steps, closed by close()
        self._file = open(self.folder.metrics, "a", buffering=1)  # noqa: SIM115
        self._started = time.monotonic()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def start_epoch(self) -> None:
        self.flush()
        self._sums[:] = 0

    def step(self, epoch: int, values: torch.Tensor, n: int) -> None:
        """One optimizer step: its (loss, accuracy) on a batch of ``n`` images."""
        self.steps += 1
        record = {"step": self.steps, "epoch": epoch, "t": self._elapsed()}
        self._pending.append((record, values, n))

    def due(self) -> bool:
        return time.monotonic() - self._last > self.every_s

    def end_epoch(self, epoch: int, val_loss: float, val_acc: float) -> bool:
        """Write the epoch's record (False when it trained on nothing)."""
        self.flush()
        if not self._sums[2]:
            return False
        loss_sum, correct, n = self._sums
        values = {"train_loss": loss_sum / n, "train_acc": correct / n, "val_loss": val_loss}
        self._write(
            "epoch", {"step": self.steps, "epoch": epoch, **values, "val_acc": val_acc, "t": self._elapsed()}
        )
        return True

    def flush(self) -> None:
        """Write the pending step records, reading their values back in one go."""
        if not self._pending:
            return
        values = torch.stack([pair for _, pair, _ in self._pending]).float().tolist()
        for (record, _, n), (loss, acc) in zip(self._pending, values, strict=True):
            self._sums += (loss * n, acc * n, n)
            self._write("step", {**record, "train_loss": loss, "train_acc": acc})
        self._pending.clear()

    def progress(self, epoch: int, epochs: int, total_steps: int) -> None:
        self._last = time.monotonic()
        progress = Progress.measure(epoch, epochs, self.steps, total_steps, self._last - self._started)
        write_progress(self.folder.progress, progress)

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 4)  # seconds since training started

    def _write(self, kind: str, values: dict) -> None:
        self._file.write(metrics_line(kind, values))


class MetricsWriter(Callback):
    """Keep a run's :class:`RunLog` as Lightning trains it; stop when ``cancel_file`` appears."""

    def __init__(self, folder: RunFolder, cancel_file: Path, every_s: float = 0.5) -> None:
        self.record = RunLog(folder, every_s)
        self.cancel_file = cancel_file

    def on_fit_start(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self.record.open()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self.record.start_epoch()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Classifier, outputs, batch, batch_idx: int
    ) -> None:
        self.record.step(trainer.current_epoch, torch.stack((outputs["ce"], outputs["acc"])), outputs["n"])
        if self.cancel_file.exists():
            self.record.flush()
            raise RunCancelled(f"run {self.record.folder.run_id} cancelled")
        if self.record.due():
            self.record.flush()
            self._progress(trainer)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        if trainer.sanity_checking:
            return
        loss, acc = (float(trainer.callback_metrics[name]) for name in ("val_loss", "val_acc"))
        if self.record.end_epoch(trainer.current_epoch, loss, acc):
            self._progress(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: Classifier) -> None:
        self.record.flush()
        self._progress(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: Classifier, exception: BaseException) -> None:
        # a broken GPU may not give its values back, a full disk may not take them: the error
        # that stopped training is the one to report
        with contextlib.suppress(RuntimeError, OSError):
            self.record.flush()
            self.record.close()

    def teardown(self, trainer: L.Trainer, pl_module: Classifier, stage: str) -> None:
        self.record.close()

    def _progress(self, trainer: L.Trainer) -> None:
        self.record.progress(trainer.current_epoch, trainer.max_epochs, trainer.estimated_stepping_batches)


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


@dataclass
class SliceData(L.LightningDataModule):
    """Training slice and fixed validation set of a network trained on images."""

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
        )


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


def make_trainer(
    epochs: int, callbacks: list[Callback], show_progress: bool = False, precision: str | None = None
) -> L.Trainer:
    """A quiet Lightning trainer on the best device (at ``precision``, or the device's default)."""
    quiet_lightning()
    return L.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        devices=1,
        precision=precision or lightning_precision(),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=show_progress and sys.stderr.isatty(),
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


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
    callbacks: list[Callback] = [MetricsWriter(folder, cancel_file)]
    mode = model.hparams.mode
    if model.backbone is not None and mode != "scratch":
        spec = get_spec(backbone_name)
        unfreeze = max(1, epochs // 3) if mode == "finetune" else None
        callbacks.append(FreezeBackbone(spec.finetune_layers, unfreeze))
    make_trainer(epochs, callbacks, show_progress).fit(model, datamodule=data)
    return model.cpu().eval()


@dataclass(frozen=True)
class HeadRun:
    """One run's head on cached features: its model (whose head trains), the rows of the
    shared feature matrix it trains on, and its batch size and sampling seed."""

    model: Classifier
    rows: np.ndarray
    batch_size: int
    seed: int


class Schedule:
    """Every head's batches of an epoch, one (heads x batch) array of feature rows per step.

    A head draws its rows as its own DataLoader would (a :class:`RandomSampler` seeded with its
    seed, at least ``MIN_STEPS_PER_EPOCH`` batches an epoch, a shorter last batch). A head whose
    epoch has ended, and the rest of a short batch, are padding of weight 0, so a head always
    computes on arrays of the same shape, whichever heads train beside it.
    """

    def __init__(self, heads: list[HeadRun]) -> None:
        sizes = {head.batch_size for head in heads}
        if len(sizes) > 1:
            raise ValueError(f"heads trained together share one batch size, not {sorted(sizes)}")
        self.heads, self.batch = heads, sizes.pop()
        self.samplers = [
            RandomSampler(
                range(len(head.rows)),
                num_samples=max(len(head.rows), MIN_STEPS_PER_EPOCH * head.batch_size),
                generator=torch.Generator().manual_seed(head.seed),
            )
            for head in heads
        ]
        self.steps = [-(-sampler.num_samples // self.batch) for sampler in self.samplers]

    def __len__(self) -> int:
        return max(self.steps)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[int]]]:
        shape = (len(self.heads), len(self) * self.batch)
        rows, weights = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.float32)
        for k, (head, sampler) in enumerate(zip(self.heads, self.samplers, strict=True)):
            # drawn to the end, as a DataLoader does: a sampler whose samples are a whole number
            # of permutations draws one more (empty) one there, and the next epoch follows it
            drawn = head.rows[np.fromiter(sampler, np.int64)]
            rows[k, : len(drawn)], weights[k, : len(drawn)] = drawn, 1
        shape = (len(self.heads), len(self), self.batch)
        rows, weights = torch.from_numpy(rows.reshape(shape)), torch.from_numpy(weights.reshape(shape))
        counts = weights.sum(2).int().T.tolist()
        for step in range(len(self)):
            yield rows[:, step], weights[:, step], counts[step]


class HeadsProduct(torch.autograd.Function):
    """Every head's logits, ``inputs @ weight^T + bias`` batched over heads, with the weight
    gradient computed as ``grad^T @ inputs``: autograd's own (``inputs^T @ grad``, then
    transposed) reads the inputs across their rows and took twice as long, the largest part of
    a step."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inputs)
        return torch.baddbmm(bias.unsqueeze(1), inputs, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor, torch.Tensor]:
        (inputs,) = ctx.saved_tensors
        return None, torch.bmm(grad.transpose(1, 2).contiguous(), inputs), grad.sum(1)


class Heads(L.LightningModule):
    """Several runs' heads on one cached feature matrix, trained as one stacked model in one
    Lightning fit.

    Each step is one batched matrix product over every head, one backward pass and one AdamW
    step, instead of one of each per head: a small head's step is almost all fixed cost. Each
    head keeps its own initialisation, seeded batches (:class:`Schedule`), learning rate,
    optimizer state and record, and a head whose epoch has ended is left out of the optimizer
    step. A batched product computes each head's slice as a product of that head alone would,
    so a run's predictions are the same bits whichever runs train beside it (tested).

    A head whose run is cancelled (its cancel file appears) stops there and the others go on;
    when every head has stopped, :class:`RunCancelled` ends the fit.
    """

    def __init__(
        self,
        heads: list[HeadRun],
        features: torch.Tensor,
        labels: torch.Tensor,
        val: np.ndarray,
        logs: list[RunLog],
        cancels: list[Path],
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(head.model for head in heads)
        self.automatic_optimization = False
        self.schedule = Schedule(heads)
        self.val = torch.from_numpy(val)
        self.logs, self.cancels = logs, cancels
        self.register_buffer("features", features, persistent=False)
        self.register_buffer("labels", labels, persistent=False)
        penalty = [HEAD_L2 / member.hparams.n_train for member in self.members]
        self.register_buffer("penalty", torch.tensor(penalty), persistent=False)
        self._val = torch.zeros(len(heads), 3, dtype=torch.float64)  # loss sum, correct, n
        self.stopped: set[int] = set()  # heads whose run was cancelled

    def _weights(self, members: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        heads = [self.members[k].head for k in members]
        return torch.stack([h.weight for h in heads]), torch.stack([h.bias for h in heads])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        by_lr: dict[float, list[nn.Parameter]] = {}
        for member in self.members:
            by_lr.setdefault(member.hparams.lr, []).extend(member.head.parameters())
        groups = [{"params": params, "lr": lr} for lr, params in by_lr.items()]
        return torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY, foreach=True)

    def train_dataloader(self) -> Schedule:
        return self.schedule

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=VAL_BATCH)

    def on_train_epoch_start(self) -> None:
        for member, log in zip(self.members, self.logs, strict=True):
            member.train()
            log.start_epoch()

    def on_fit_start(self) -> None:
        # a batch's feature rows are copied into one buffer kept across steps: into fresh memory
        # the copy took 4x as long (page faults on every step's 50 MB)
        rows = len(self.members) * self.schedule.batch
        self._inputs = self.features.new_empty(rows, self.features.shape[1])

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, list[int]], batch_idx: int) -> None:
        rows, weights, counts = batch
        # the heads whose epoch goes on
        active = [k for k, count in enumerate(counts) if count and k not in self.stopped]
        if not active:
            return
        if len(active) < len(counts):
            rows, weights = rows[active], weights[active]
        inputs = self._inputs[: rows.numel()].view(*rows.shape, -1)
        torch.index_select(self.features, 0, rows.flatten(), out=inputs.view(rows.numel(), -1))
        labels = self.labels[rows]
        weight, bias = self._weights(active)
        logits = HeadsProduct.apply(inputs, weight, bias)
        losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        n = weights.sum(1)
        loss = (losses.view_as(weights) * weights).sum(1) / n
        acc = ((logits.argmax(2) == labels) * weights).sum(1) / n
        penalty = self.penalty[active] * weight.pow(2).sum((1, 2))
        optimizer = self.optimizers()
        optimizer.zero_grad()  # a head left out of this step keeps no gradient: AdamW skips it
        self.manual_backward((loss + penalty).sum())
        optimizer.step()
        values = torch.stack((loss.detach(), acc), 1)
        for j, k in enumerate(active):
            self.logs[k].step(self.current_epoch, values[j], counts[k])
            if self.cancels[k].exists():
                self.logs[k].flush()
                self.stopped.add(k)
        if len(self.stopped) == len(self.members):
            raise RunCancelled(f"run {', '.join(log.folder.run_id for log in self.logs)} cancelled")
        if self.logs[0].due():
            self._progress()

    def validation_step(self, rows: torch.Tensor, batch_idx: int) -> None:
        weight, bias = self._weights(list(range(len(self.members))))
        labels = self.labels[rows]
        logits = torch.matmul(self.features[rows], weight.transpose(1, 2)) + bias.unsqueeze(1)
        losses = F.cross_entropy(logits.flatten(0, 1), labels.repeat(len(weight)), reduction="none")
        correct = (logits.argmax(2) == labels).sum(1)
        n = torch.full_like(correct, len(rows))
        self._val += torch.stack((losses.view(len(weight), -1).sum(1), correct, n), 1).double().cpu()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        for k, (loss, correct, n) in enumerate(self._val.tolist()):
            if k not in self.stopped:
                self.logs[k].end_epoch(self.current_epoch, loss / n, correct / n)
        self._val[:] = 0
        self._progress()

    def on_fit_end(self) -> None:
        self._progress()

    def _progress(self) -> None:
        for k, (log, steps) in enumerate(zip(self.logs, self.schedule.steps, strict=True)):
            if k not in self.stopped:
                log.flush()
                log.progress(self.current_epoch, self.trainer.max_epochs, steps * self.trainer.max_epochs)


def fit_heads(
    heads: list[HeadRun],
    features: np.ndarray,
    labels: np.ndarray,
    val: np.ndarray,
    epochs: int,
    folders: list[RunFolder],
    cancel_files: list[Path],
    show_progress: bool = False,
) -> list[Classifier | None]:
    """Train runs' heads on one cached feature matrix (``features``: every image's, with its
    ``labels``; ``val``: the rows of the fixed validation set) together (see :class:`Heads`);
    each run's metrics go to its own folder as it trains. ``None`` for a run cancelled while
    others went on.

    Raises:
        RunCancelled: every run was cancelled.
    """
    logs = [RunLog(folder) for folder in folders]
    for log in logs:
        log.open()
    features, labels = torch.from_numpy(np.array(features)), torch.from_numpy(np.array(labels))
    module = Heads(heads, features, labels, val, logs, cancel_files)
    try:
        make_trainer(epochs, [], show_progress).fit(module)
    finally:
        for log in logs:
            with contextlib.suppress(RuntimeError, OSError):
                log.flush()
            log.close()
    return [None if k in module.stopped else head.model.cpu().eval() for k, head in enumerate(heads)]
