"""A frozen backbone's linear head fitted to convergence: L2-regularised multinomial logistic
regression on cached features, solved by full-batch L-BFGS inside a Lightning fit, its penalty
chosen on the fixed validation set.

Why not minibatch AdamW: the head is a convex problem, and its optimum is what a learning-curve
point should measure. Twenty AdamW epochs at a fixed learning rate stopped short of it by an
amount that varied with the slice: on 60,000 Fashion-MNIST images three 2,000-per-class slices
scored 0.838, 0.860 and 0.805, so the curve showed optimizer luck, not data.

Why the penalty is chosen: with scikit-learn's default C = 1 the optimum itself overfits once
the slice nears separability (at 2,000 per class, 0.841 against 0.874 at C = 0.03 on the same
slice), and the curve dips and flattens for that reason alone. The validation set is fixed and
apart from the holdout, so each run walks the path ``C`` = :data:`PATH` from the strongest
penalty, warm-starting each solve from the last, keeps the solve with the lowest validation
log-loss, and stops once two penalties in a row did worse.

The solve works in whitened coordinates: the features are standardised (the pool's mean and
standard deviation) and the head's weights are written ``W = V P`` with
``P = (S + (lam / 0.1) I)^-1/2``, ``S`` the covariance of the standardised pool, kept in its
eigenbasis (``P = E diag(r) E^T``, so ``W = U diag(r) E^T`` and a new penalty only rescales ``U``
and the projected features). The optimum is unchanged (``W`` is what is penalised and
returned); what changes is the conditioning: at 2,000 per class L-BFGS reached a gradient of
1e-5 in about 70 iterations instead of not at all in 1,000. ``P`` depends only on the pool and
the penalty, so a run's head is the same whichever runs are fitted beside it.

Each Lightning epoch is one round of at most :data:`ROUND_ITERATIONS` L-BFGS iterations (the
optimizer keeps its history across the rounds of one penalty), then the validation set is scored
and written to the run's record. The fit ends when the path does, or after the configuration's
``epochs`` rounds, and between rounds when the run's cancel file appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.base.errors import RunCancelled
from core.engine.training import RunLog, make_trainer
from core.store.runs import RunFolder

GRADIENT_TOLERANCE = 1e-5  # converged: no gradient entry (whitened coordinates) above this
ROUND_ITERATIONS = 25  # L-BFGS iterations per Lightning epoch
HISTORY = 10  # L-BFGS curvature pairs kept
RIDGE_SHARE = 0.1  # the preconditioner's ridge is lam / RIDGE_SHARE: damped where the data is thin
STD_FLOOR = 1e-3  # a feature's standard deviation is at least this share of the largest one
PATH = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # inverse penalties C tried, strongest first
PATIENCE = 2  # the path stops after this many penalties in a row worse than the best
STALL = 1e-7  # a round whose loss fell by less than this share is stalled at float32's resolution
ROUNDS_PER_PENALTY = 12  # a penalty not converged after this many rounds is scored as it stands


@dataclass(frozen=True)
class Whitening:
    """The pool's feature statistics the solve is conditioned by: mean and standard deviation
    of every feature, and the eigendecomposition of the standardised pool's covariance."""

    mean: torch.Tensor
    std: torch.Tensor
    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor

    @classmethod
    def of_pool(cls, features: np.ndarray, pool: np.ndarray) -> Whitening:
        """The covariance in float32 (a preconditioner need not be exact), its eigenvectors in
        float64 (they must be orthogonal: the penalty is computed in their basis)."""
        rows = torch.from_numpy(np.asarray(features[np.sort(pool)], dtype=np.float32))
        mean, std = rows.mean(0), rows.std(0, correction=0)
        std = std.clamp(min=STD_FLOOR * float(std.max()))
        standard = (rows - mean) / std
        covariance = standard.T @ standard / (len(rows) - 1)
        values, vectors = torch.linalg.eigh(covariance.double())
        return cls(mean, std, values.clamp(min=0).float(), vectors.float())

    def root(self, lam: float) -> torch.Tensor:
        """The diagonal of ``P`` in the eigenbasis for the penalty ``lam``."""
        return (self.eigenvalues + lam / RIDGE_SHARE).rsqrt()


class ConvexHead(L.LightningModule):
    """One run's head (``head``, an ``nn.Linear`` on raw features), fitted by L-BFGS along the
    penalty path on standardised features; :meth:`finish` writes the solve with the lowest
    validation loss back into ``head`` in raw-feature terms."""

    def __init__(
        self,
        head: nn.Linear,
        features: torch.Tensor,
        labels: torch.Tensor,
        rows: np.ndarray,
        val: np.ndarray,
        whitening: Whitening,
        lr: float,
        record: RunLog,
        cancel_file: Path,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.head, self.whitening, self.lr = head, whitening, lr
        self.record, self.cancel_file = record, cancel_file
        standard = (features[torch.from_numpy(rows)] - whitening.mean) / whitening.std
        self.lam = 1.0 / (PATH[0] * len(rows))
        root = whitening.root(self.lam)
        # the features in P's eigenbasis, scaled by its diagonal: Z W^T = (Z E diag(r)) U^T
        self.register_buffer("inputs", (standard @ whitening.eigenvectors) * root)
        self.register_buffer("root", root)
        self.register_buffer("targets", labels[torch.from_numpy(rows)])
        self.register_buffer("val_inputs", features[torch.from_numpy(val)])
        self.register_buffer("val_targets", labels[torch.from_numpy(val)])
        classes, width = head.weight.shape
        self.u = nn.Parameter(torch.zeros(classes, width))  # W = U diag(r) E^T
        self.c = nn.Parameter(torch.zeros(classes))
        self.step_on_path = 0
        self.rounds_here = 0
        self.gradient = float("inf")  # largest gradient entry at the last evaluation
        self.stalled = False  # the last round could not lower the loss
        self.iterations = 0
        self.best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None  # loss, C, W, b
        self.worse = 0  # penalties in a row whose validation loss was above the best
        self.all_converged = True

    @property
    def converged(self) -> bool:
        """At the tolerance, or as close as float32 can tell."""
        return self.gradient <= GRADIENT_TOLERANCE or self.stalled

    @property
    def penalty_c(self) -> float:
        return PATH[self.step_on_path]

    @torch.no_grad()
    def _set_penalty(self) -> None:
        """Move to the path's current penalty: its preconditioner's diagonal, and ``U`` for the
        same ``W``."""
        self.lam = 1.0 / (self.penalty_c * len(self.targets))
        root = self.whitening.root(self.lam).to(self.root)
        self.u.mul_(self.root / root)
        self.inputs.mul_(root / self.root)
        self.root.copy_(root)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.LBFGS(
            [self.u, self.c],
            lr=self.lr,
            max_iter=ROUND_ITERATIONS,
            tolerance_grad=GRADIENT_TOLERANCE,
            tolerance_change=0.0,
            history_size=HISTORY,
            line_search_fn="strong_wolfe",
        )

    def objective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The penalised mean loss (``||W||^2 = ||U diag(r)||^2``, the eigenbasis being
        orthonormal), and the training accuracy."""
        logits = self.inputs @ self.u.T + self.c
        accuracy = (logits.argmax(1) == self.targets).float().mean()
        penalty = 0.5 * self.lam * (self.u * self.root).pow(2).sum()
        return F.cross_entropy(logits, self.targets) + penalty, accuracy

    def train_dataloader(self) -> list[int]:
        return [0]  # one full-batch round per epoch; the data are the buffers

    def on_train_epoch_start(self) -> None:
        self.record.start_epoch()

    def val_dataloader(self) -> list[int]:
        return [0]

    def training_step(self, batch, batch_idx: int) -> None:
        optimizer = self.optimizers().optimizer

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss, _ = self.objective()
            loss.backward()
            self.gradient = max(self.u.grad.abs().max().item(), self.c.grad.abs().max().item())
            return loss

        before = optimizer.state[self.u].get("n_iter", 0)
        start = optimizer.step(closure).item()
        self.iterations += optimizer.state[self.u]["n_iter"] - before
        self.rounds_here += 1
        with torch.no_grad():
            loss, accuracy = self.objective()
        # a round that cannot lower the loss any more has reached float32's resolution
        self.stalled = start - loss.item() <= STALL * max(1.0, abs(start))
        self.record.step(self.current_epoch, torch.stack((loss, accuracy)), len(self.targets))
        if self.cancel_file.exists():
            self.record.flush()
            raise RunCancelled(f"run {self.record.folder.run_id} cancelled")

    @torch.no_grad()
    def validation_step(self, batch, batch_idx: int) -> None:
        weight, bias = self.raw()
        logits = self.val_inputs @ weight.T + bias
        loss = F.cross_entropy(logits, self.val_targets).item()
        accuracy = (logits.argmax(1) == self.val_targets).float().mean().item()
        self.record.end_epoch(self.current_epoch, loss, accuracy)
        self.record.progress(self.current_epoch, self.trainer.max_epochs, self.trainer.max_epochs)
        if self.converged or self.rounds_here >= ROUNDS_PER_PENALTY:
            self._next_penalty(loss, weight, bias)

    def _next_penalty(self, loss: float, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.all_converged &= self.converged
        if self.best is None or loss < self.best[0]:
            self.best, self.worse = (loss, self.penalty_c, weight.clone(), bias.clone()), 0
        else:
            self.worse += 1
        if self.worse >= PATIENCE or self.step_on_path == len(PATH) - 1:
            self.trainer.should_stop = True
            return
        self.step_on_path += 1
        self.rounds_here = 0
        self._set_penalty()
        self.optimizers().optimizer.state.clear()  # its curvature history was for the last penalty

    @torch.no_grad()
    def raw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current head in raw-feature terms: ``W / std``, the bias with the mean folded in."""
        eigenvectors = self.whitening.eigenvectors.to(self.u)
        weight = ((self.u * self.root) @ eigenvectors.T) / self.whitening.std.to(self.u)
        return weight, self.c - weight @ self.whitening.mean.to(self.u)

    def finish(self) -> Solved:
        """Write the best solve into ``head`` (the last one when the rounds ran out first)."""
        if self.best is None:
            weight, bias = self.raw()
            self.all_converged = False
        else:
            _, _, weight, bias = self.best
        self.head.weight.data.copy_(weight.cpu())
        self.head.bias.data.copy_(bias.cpu())
        return Solved(self.iterations, self.all_converged, None if self.best is None else self.best[1])


@dataclass(frozen=True)
class Solved:
    """How a head's solve ended: L-BFGS iterations taken over the path, whether every solve
    reached the tolerance, and the inverse penalty ``C`` chosen (None: the rounds ran out first)."""

    iterations: int
    converged: bool
    c: float | None


def fit_convex_head(
    head: nn.Linear,
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    rows: np.ndarray,
    val: np.ndarray,
    whitening: Whitening,
    lr: float,
    rounds: int,
    folder: RunFolder,
    cancel_file: Path,
) -> Solved:
    """Fit ``head`` on the feature ``rows`` (of every image's ``features`` and ``labels``) to the
    optimum of logistic regression whose C is chosen on the ``val`` rows, in at most ``rounds``
    Lightning epochs, writing the run's metrics into ``folder``.

    Raises:
        RunCancelled: ``cancel_file`` appeared.
    """
    features, labels = torch.as_tensor(features), torch.as_tensor(labels)
    record = RunLog(folder)
    record.open()
    module = ConvexHead(head, features, labels, rows, val, whitening, lr, record, cancel_file)
    try:
        # full precision: L-BFGS's line search needs exact losses, which half precision is not
        make_trainer(rounds, [], precision="32-true").fit(module)
    finally:
        record.flush()
        record.close()
    return module.finish()
