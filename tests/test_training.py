"""Heads on cached features trained as one stacked model: the batches each head draws, and a
head's result whatever heads of other lengths train beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler

from core.engine.training import MIN_STEPS_PER_EPOCH, HeadRun, Schedule, fit_heads
from core.models.classifier import Classifier
from core.store.runs import RunFolder


@pytest.mark.parametrize(
    "n, batch",
    [(3, 256), (2048, 256), (2400, 256), (2500, 256), (30, 2)],
    ids=["tiny slice", "exactly 8 batches", "whole permutation", "short last batch", "batch of 2"],
)
def test_a_head_draws_the_batches_its_own_dataloader_would(n, batch):
    """Epoch after epoch, including the case where a sampler's samples are a whole permutation
    (it then draws one more, empty permutation at its end, and the next epoch follows that)."""
    rows = np.arange(n) * 3 + 1  # the head's rows in a larger feature matrix
    schedule = Schedule([HeadRun(None, rows, batch, seed=7)])
    sampler = RandomSampler(
        range(n),
        num_samples=max(n, MIN_STEPS_PER_EPOCH * batch),
        generator=torch.Generator().manual_seed(7),
    )
    loader = DataLoader(rows, batch_size=batch, sampler=sampler)
    for _ in range(3):
        expected = [b.numpy() for b in loader]
        drawn = [r[0][w[0] > 0].numpy() for r, w, _ in schedule]
        assert len(drawn) == len(schedule) == len(expected)
        for ours, theirs in zip(drawn, expected, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_heads_trained_together_share_one_batch_size():
    heads = [HeadRun(None, np.arange(10), 8, seed=1), HeadRun(None, np.arange(10), 16, seed=1)]
    with pytest.raises(ValueError, match="share one batch size"):
        Schedule(heads)


def _fit(heads: list[HeadRun], folder: Path, features: np.ndarray, labels: np.ndarray) -> list[Classifier]:
    folders = [RunFolder(folder / f"head{k}") for k in range(len(heads))]
    for run in folders:
        run.path.mkdir(parents=True)
    val = np.arange(250, 300)
    return fit_heads(heads, features, labels, val, 3, folders, [folder / "cancel"] * len(heads))


@pytest.mark.train
def test_a_head_trains_to_the_same_bits_beside_heads_whose_epochs_are_shorter_or_longer(tmp_path):
    """Epochs of 8, 13 (the last batch short) and 32 steps: the shorter heads sit out the
    longer ones' extra steps, with no optimizer step at all, not even weight decay."""
    generator = np.random.default_rng(0)
    features = generator.normal(size=(300, 16)).astype(np.float32)
    labels = generator.integers(0, 3, 300)

    def head(n: int, seed: int) -> HeadRun:
        torch.manual_seed(seed)
        return HeadRun(Classifier(None, 16, 3, lr=1e-2, mode="frozen", n_train=n), np.arange(n), 8, seed)

    together = _fit([head(5, 1), head(100, 2), head(250, 3)], tmp_path / "together", features, labels)
    for k, (n, seed) in enumerate([(5, 1), (100, 2), (250, 3)]):
        alone = _fit([head(n, seed)], tmp_path / f"alone{k}", features, labels)[0]
        assert torch.equal(together[k].head.weight, alone.head.weight)
        assert torch.equal(together[k].head.bias, alone.head.bias)
    records = [
        json.loads(line) for line in (tmp_path / "together/head1/metrics.jsonl").read_text().splitlines()
    ]
    steps = [r for r in records if r["kind"] == "step"]
    assert len(steps) == 3 * 13 and steps[-1]["step"] == 39, "its own steps, numbered from 1"
    assert len([r for r in records if r["kind"] == "epoch"]) == 3
