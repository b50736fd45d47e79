"""Named augmentation policies, built from torchvision.transforms.v2.

Per-image policies map a uint8 C x H x W tensor to a float 0..1 tensor of the same size.
``mixup`` and ``cutmix`` are the ``light`` policy per image plus a batch-level mix that
:func:`batch_mixer` returns. Validation and holdout images never pass through any of this.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.base.errors import UserError, check_choice

POLICIES = ("none", "light", "standard", "heavy", "mixup", "cutmix")
BATCH_POLICIES = ("mixup", "cutmix")


def check_policy(name: str) -> str:
    return check_choice("augmentation", name, POLICIES)


def image_transform(policy: str, size: int) -> Callable:
    """The per-image transform of a policy (uint8 CHW tensor -> float CHW tensor in 0..1)."""
    import torch
    from torchvision.transforms import v2

    check_policy(policy)
    to_float = v2.ToDtype(torch.float32, scale=True)
    light = [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    steps = {
        "none": [],
        "light": light,
        "mixup": light,
        "cutmix": light,
        "standard": [
            *light,
            v2.RandomRotation(15),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
        ],
        # comparable to the original experiment's imgaug pipeline: strong geometric and
        # photometric changes, then occlusion
        "heavy": [
            v2.RandomResizedCrop(size, scale=(0.3, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.TrivialAugmentWide(),
            to_float,
            v2.RandomErasing(p=0.5, scale=(0.02, 0.2)),
        ],
    }[policy]
    if to_float not in steps:
        steps = [*steps, to_float]
    return v2.Compose(steps)


def batch_mixer(policy: str, num_classes: int) -> Callable | None:
    """MixUp or CutMix over a (images, labels) batch; ``None`` for per-image policies."""
    if policy not in BATCH_POLICIES:
        return None
    from torchvision.transforms import v2

    return v2.MixUp(num_classes=num_classes) if policy == "mixup" else v2.CutMix(num_classes=num_classes)


def augmented_views(images: np.ndarray, policy: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` augmented views of ``images[0]`` (uint8 N x H x W x 3) as uint8, for previews.

    Batch policies mix ``images[0]`` with the other images given (at least two are needed).
    """
    import torch

    if policy in BATCH_POLICIES and len(images) < 2:
        raise UserError(f"a {policy} preview needs at least 2 images to mix")
    torch.manual_seed(seed)
    size = images.shape[1]
    transform = image_transform(policy, size)
    tensors = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    views = torch.stack([transform(tensors[0]) for _ in range(n)])
    mixer = batch_mixer(policy, num_classes=2)
    if mixer is not None:
        partners = torch.stack([transform(tensors[1 + i % (len(images) - 1)]) for i in range(n)])
        for i in range(n):
            pair = torch.stack([views[i], partners[i]])
            views[i] = mixer(pair, torch.tensor([0, 1]))[0][0]
    return (views.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
