"""Augmentation policies: shapes, ranges, randomness and the preview of N views."""

import numpy as np
import pytest
import torch

from core.base.errors import UserError
from core.data.augment import POLICIES, augmented_views, image_transform


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("policy", POLICIES)
def test_policy_keeps_size_and_range(policy, images):
    out = image_transform(policy, 48)(torch.from_numpy(images[0]).permute(2, 0, 1))
    assert out.shape == (3, 48, 48) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_none_is_the_identity(images):
    out = image_transform("none", 48)(torch.from_numpy(images[0]).permute(2, 0, 1))
    assert torch.equal((out * 255).round().byte().permute(1, 2, 0), torch.from_numpy(images[0]))


@pytest.mark.parametrize("policy", ["light", "standard", "heavy", "mixup", "cutmix"])
def test_views_differ_and_reproduce_from_their_seed(policy, images):
    views = augmented_views(images, policy, n=4, seed=7)
    assert views.shape == (4, 48, 48, 3) and views.dtype == np.uint8
    assert len({v.tobytes() for v in views}) == 4
    assert np.array_equal(views, augmented_views(images, policy, n=4, seed=7))


def test_mixing_preview_needs_a_partner(images):
    with pytest.raises(UserError, match="at least 2 images"):
        augmented_views(images[:1], "mixup", n=2)


def test_unknown_policy_lists_the_choices():
    with pytest.raises(UserError, match="choose one of: none, light"):
        image_transform("extreme", 48)
