"""Heads on cached features fitted to convergence: the optimum scikit-learn finds, the penalty
chosen on the validation set, and a cancel that stops between rounds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.base.errors import RunCancelled
from core.engine.head_solver import PATH, Whitening, fit_convex_head
from core.store.runs import RunFolder

pytestmark = pytest.mark.train

ROWS, VAL, POOL = np.arange(0, 200), np.arange(250, 400), np.arange(0, 250)


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping classes in 16 features of very different scales (as backbone features
    are): a problem plain gradient descent converges on slowly."""
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 3, 400)
    centres = generator.normal(size=(3, 16))
    scales = np.geomspace(0.05, 20, 16)
    features = ((centres[labels] + generator.normal(size=(400, 16)) * 3.0) * scales).astype(np.float32)
    return features, labels


def solve(problem, folder: Path, rows=ROWS, cancel: Path | None = None):
    features, labels = problem
    run = RunFolder(folder)
    run.path.mkdir(parents=True, exist_ok=True)
    head = nn.Linear(16, 3)
    solved = fit_convex_head(
        head,
        torch.from_numpy(features),
        torch.from_numpy(labels),
        rows,
        VAL,
        Whitening.of_pool(features, POOL),
        1.0,
        60,
        run,
        cancel or folder / "cancel",
    )
    return head, solved, run


def test_the_head_is_the_optimum_scikit_learn_finds_at_the_chosen_penalty(problem, tmp_path):
    from sklearn.linear_model import LogisticRegression

    features, labels = problem
    head, solved, _ = solve(problem, tmp_path / "run")
    assert solved.converged and solved.c in PATH
    mean, std = features[POOL].mean(0), features[POOL].std(0)
    reference = LogisticRegression(C=solved.c, tol=1e-10, max_iter=100_000)
    reference.fit((features[ROWS] - mean) / std, labels[ROWS])
    with torch.no_grad():
        ours = torch.softmax(head(torch.from_numpy(features)), 1).numpy()
    theirs = reference.predict_proba((features - mean) / std)
    assert np.abs(ours - theirs).max() < 1e-3


def test_a_smaller_slice_is_given_a_stronger_penalty(problem, tmp_path):
    _, solved, run = solve(problem, tmp_path / "run")
    _, small, _ = solve(problem, tmp_path / "small", rows=ROWS[:12])
    assert small.c < solved.c, "12 images cannot afford the weights 200 can"
    epochs = [r for r in map(json.loads, run.metrics.read_text().splitlines()) if r["kind"] == "epoch"]
    assert len(epochs) >= 3, "every penalty on the path leaves its rounds in the record"


def test_a_cancel_stops_the_solve_after_its_first_round(problem, tmp_path):
    cancel = tmp_path / "cancel-now"
    cancel.touch()
    with pytest.raises(RunCancelled, match="cancelled"):
        solve(problem, tmp_path / "run", cancel=cancel)
    records = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len([r for r in records if '"kind": "step"' in r]) == 1
