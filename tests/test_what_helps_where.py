"""Which augmentation helps at which slice, and from which slice fine-tuning beats a frozen
backbone: on a table whose answers are known."""

import pandas as pd
import pytest

from core.store.tables import crossover, crossovers, policy_grid


def synthetic_frame() -> pd.DataFrame:
    rows = []
    for aug, mode, gains in (
        ("none", "frozen", (0.50, 0.70, 0.80)),
        ("heavy", "frozen", (0.45, 0.68, 0.82)),
        ("none", "finetune", (0.40, 0.72, 0.86)),
    ):
        for slice_text, order, accuracy in zip(
            ("1/class", "10%", "100%"), ((0, 1), (1, 10), (1, 100)), gains, strict=True
        ):
            for seed in (1, 2):
                rows.append(
                    {
                        "aug": aug,
                        "mode": mode,
                        "slice": slice_text,
                        "slice_order": order,
                        "images_per_class": order[1],
                        "seed": seed,
                        "experiment": f"{mode} {aug}",
                        "accuracy": accuracy + 0.01 * seed,
                    }
                )
    return pd.DataFrame(rows)


def test_what_helps_where():
    frame = synthetic_frame()
    grid = policy_grid(frame[frame["mode"] == "frozen"])
    assert list(grid.columns) == ["1/class", "10%", "100%"] and list(grid.index) == ["heavy", "none"]
    assert grid.loc["heavy", "1/class"] == pytest.approx(0.465)
    assert crossover(frame, "frozen none", "finetune none") == "10%"
    assert crossover(frame, "finetune none", "frozen none") is None


def test_every_fine_tuned_experiment_is_set_against_every_frozen_one_in_words():
    found = crossovers(synthetic_frame())
    assert [(c.baseline, c.challenger, c.from_slice) for c in found] == [
        ("frozen heavy", "finetune none", "10%"),
        ("frozen none", "finetune none", "10%"),
    ]
    assert found[1].sentence() == "**finetune none** beats **frozen none** from **10 per class (10%)** on."
    names = {"finetune none": "fine-tuned", "frozen none": "frozen"}
    assert found[1].sentence(names) == "**fine-tuned** beats **frozen** from **10 per class (10%)** on."
    assert crossovers(synthetic_frame().query("mode == 'frozen'")) == []
