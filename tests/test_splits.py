"""The fixed holdout and validation sets, and slices nested as prefixes of one order."""

from __future__ import annotations

import numpy as np
import pytest

from core.base.errors import UserError
from core.data.splits import ORIGINAL_SLICES, SliceSpec, curve_slices, make_splits, slice_sizes

CLASSES = tuple(f"c{i}" for i in range(5))


@pytest.fixture
def labels() -> np.ndarray:
    sizes = [700, 650, 120, 90, 400]  # unequal classes, like the flowers
    return np.concatenate([np.full(n, k) for k, n in enumerate(sizes)])


def test_holdout_validation_and_pool_partition_every_class(labels):
    splits = make_splits(labels, CLASSES)
    pool = np.concatenate(splits.pools)
    everything = np.concatenate([splits.holdout, splits.val, pool])
    assert len(everything) == len(labels) == len(np.unique(everything))
    for k in range(len(CLASSES)):
        n = (labels == k).sum()
        assert (labels[splits.holdout] == k).sum() == round(0.1 * n)
        assert (labels[splits.val] == k).sum() == round(0.1 * n)


def test_holdout_and_validation_are_fixed(labels):
    first, again = make_splits(labels, CLASSES), make_splits(labels, CLASSES)
    assert np.array_equal(first.holdout, again.holdout)
    assert np.array_equal(first.val, again.val)
    other = make_splits(labels, CLASSES, seed=1)
    assert not np.array_equal(first.holdout, other.holdout), "the split seed must matter"


@pytest.mark.parametrize("sample_seed", [1, 2, 3])
def test_slices_are_nested_and_never_touch_holdout_or_validation(labels, sample_seed):
    splits = make_splits(labels, CLASSES)
    fixed = set(splits.holdout) | set(splits.val)
    previous: set = set()
    for text in ORIGINAL_SLICES:
        train = set(splits.slice_indices(SliceSpec.parse(text), sample_seed, CLASSES))
        assert previous <= train, f"{text} does not contain the smaller slice"
        assert not train & fixed
        previous = train
    assert previous == set(np.concatenate(splits.pools)), "100% is the whole pool"


def test_slice_sizes_per_class(labels):
    splits = make_splits(labels, CLASSES)
    for text, expected in [
        ("1/class", [1] * 5),
        ("3/class", [3] * 5),
        ("5%", [max(1, round(len(p) * 0.05)) for p in splits.pools]),
    ]:
        train = splits.slice_indices(SliceSpec.parse(text), 1, CLASSES)
        assert np.bincount(labels[train], minlength=5).tolist() == expected


def test_sample_seed_changes_which_images(labels):
    splits = make_splits(labels, CLASSES)
    one = SliceSpec.parse("3/class")
    picks = {tuple(splits.slice_indices(one, seed, CLASSES)) for seed in range(5)}
    assert len(picks) == 5


def test_class_with_too_few_images_is_named(labels):
    small = np.concatenate([labels, np.full(2, 5)])
    with pytest.raises(UserError, match="class 'tiny' has 2 readable image"):
        make_splits(small, (*CLASSES, "tiny"))


def test_smallest_usable_class_keeps_a_training_image():
    splits = make_splits(np.array([0, 0, 0, 1, 1, 1]), ("a", "b"))
    assert [len(p) for p in splits.pools] == [1, 1]


@pytest.mark.parametrize("text", ["3", "0/class", "0%", "150%", "five%", "3 per class"])
def test_bad_slice_text(text):
    with pytest.raises(UserError, match="slice"):
        SliceSpec.parse(text)


def test_slice_larger_than_pool_names_the_class(labels):
    splits = make_splits(labels, CLASSES)
    with pytest.raises(UserError, match="class 'c2' but its training pool has 96"):
        splits.slice_indices(SliceSpec.parse("100/class"), 1, CLASSES)


def test_slice_text_round_trips():
    assert [str(SliceSpec.parse(t)) for t in ["3/Class", " 5 %", "12.5%"]] == ["3/class", "5%", "12.5%"]


def test_slice_sizes_explain_impossible_slices():
    labels = np.repeat(np.arange(3), 12)
    sizes = {row.name: row for row in slice_sizes(labels, ("a", "b", "c"), ["1/class", "50/class"])}
    assert sizes["holdout (fixed)"].images == 3
    assert sizes["slice 1/class"].images == 3 and not sizes["slice 1/class"].note
    assert sizes["slice 1/class"].per_class == "1" and sizes["training pool"].per_class == "10"
    assert "pool has 10" in sizes["slice 50/class"].note and sizes["slice 50/class"].images is None


def test_per_class_counts_round_trip_and_name_every_class():
    spec = SliceSpec.parse(" *=2 ; Coat = 5;Bag=3")
    assert str(spec) == "Bag=3;Coat=5;*=2"
    assert (spec.count("Coat", 100), spec.count("Shirt", 100)) == (5, 2)
    assert SliceSpec.parse("Bag=3;*=2").sort_key() > SliceSpec.parse("100%").sort_key()
    with pytest.raises(UserError, match="'Bag=0' is not class=count"):
        SliceSpec.parse("Bag=0;*=1")
    with pytest.raises(UserError, match="gives no count for class 'c1'"):
        make_splits(np.repeat(np.arange(2), 10), ("c0", "c1")).slice_indices(
            SliceSpec.parse("c0=2"), 0, ("c0", "c1")
        )


def test_curve_slices_stop_at_the_smallest_pool():
    assert curve_slices([400, 380]) == [
        f"{n}/class" for n in (1, 2, 3, 5, 8, 13, 20, 30, 50, 80, 130, 200, 300)
    ] + ["100%"]
    assert curve_slices([4, 10]) == ["1/class", "2/class", "3/class", "100%"]


def test_slice_sizes_say_the_range_per_class_where_classes_differ():
    labels = np.concatenate([np.repeat(0, 20), np.repeat(1, 40)])
    sizes = {row.name: row for row in slice_sizes(labels, ("a", "b"), ["50%"])}
    assert sizes["training pool"].per_class == "16 to 32" and sizes["training pool"].images == 48
    assert sizes["slice 50%"].per_class == "8 to 16"
