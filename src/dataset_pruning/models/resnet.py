"""CIFAR-style ResNets (He et al., 2016): 3x3 stem convolution, no max-pool, four stages of residual blocks.

The variants are data (block type, blocks per stage) passed to one private factory, as in torchvision's
``resnet.py``. At the default ``width`` 64 with 10 classes, ResNet-18 has 11,173,962 parameters and ResNet-50
23,520,842 (the paper quotes torchvision's ImageNet counts, 11.69M and 25.56M, which include the 1000-way head and
the 7x7 stem). ``width`` scales every stage (64, 128, 256, 512 at 64) for CPU-sized runs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from dataset_pruning.models.base import MODELS, Classifier


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 projection (option B of He et al.)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(in_channels, out_channels, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions; output has ``planes`` channels. ``gate`` (e.g. squeeze-excitation) rescales the
    residual branch before the addition."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, gate: nn.Module | None = None) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *_conv_bn(in_channels, planes, 3, stride), nn.ReLU(), *_conv_bn(planes, planes, 3)
        )
        self.gate = gate if gate is not None else nn.Identity()
        self.shortcut = _shortcut(in_channels, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.gate(self.residual(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4; output has ``4 * planes`` channels."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, gate: nn.Module | None = None) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.residual = nn.Sequential(
            *_conv_bn(in_channels, planes, 1),
            nn.ReLU(),
            *_conv_bn(planes, planes, 3, stride),
            nn.ReLU(),
            *_conv_bn(planes, out_channels, 1),
        )
        self.gate = gate if gate is not None else nn.Identity()
        self.shortcut = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.gate(self.residual(x)) + self.shortcut(x))


def _check_image_shape(name: str, input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 3:
        raise ValueError(
            f"{name} expects image inputs of shape (channels, height, width), got {tuple(input_shape)}; "
            f"use mlp or cnn1d for vector or sequence data"
        )
    return int(input_shape[0])


def _resnet(
    name: str,
    block: type[BasicBlock] | type[Bottleneck],
    layers: Sequence[int],
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int,
    gate_factory: Callable[[int], nn.Module] | None = None,
) -> Classifier:
    """Stem conv 3x3 -> BN -> ReLU, four stages (strides 1, 2, 2, 2; widths w, 2w, 4w, 8w), global average pool.

    ``gate_factory(channels)`` optionally builds a module applied to each block's residual branch (SENet).
    Features have shape (batch, 8 * width * block.expansion).
    """
    in_channels = _check_image_shape(name, input_shape)
    if width < 1:
        raise ValueError(f"{name}: width must be >= 1, got {width}")
    modules: list[nn.Module] = [*_conv_bn(in_channels, width, 3), nn.ReLU()]
    channels = width
    for stage, num_blocks in enumerate(layers):
        planes = width * 2**stage
        for index in range(num_blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            gate = gate_factory(planes * block.expansion) if gate_factory is not None else None
            modules.append(block(channels, planes, stride, gate=gate))
            channels = planes * block.expansion
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    features = nn.Sequential(*modules)
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return Classifier(features, channels, num_classes)


@MODELS.register("resnet18")
def resnet18(*, input_shape: tuple[int, ...], num_classes: int, width: int = 64) -> Classifier:
    """ResNet-18: BasicBlocks (2, 2, 2, 2); features of width ``8 * width``."""
    return _resnet("resnet18", BasicBlock, (2, 2, 2, 2), input_shape=input_shape, num_classes=num_classes, width=width)


@MODELS.register("resnet50")
def resnet50(*, input_shape: tuple[int, ...], num_classes: int, width: int = 64) -> Classifier:
    """ResNet-50: Bottlenecks (3, 4, 6, 3); features of width ``32 * width``."""
    return _resnet("resnet50", Bottleneck, (3, 4, 6, 3), input_shape=input_shape, num_classes=num_classes, width=width)
