"""A small SENet (Hu et al., 2018): the CIFAR ResNet-18 layout with a squeeze-excitation gate in every block.

The paper's cross-architecture experiment (Fig. 3) prunes CIFAR-10 with "SENet (1.25M parameters)". Its exact
network is not published; this one is SE-ResNet-18 with stage widths (21, 42, 84, 168) and reduction 16, which
has 1,216,177 parameters with 10 classes: the integer width closest to 1.25M (width 20: 1.10M, 22: 1.33M).
"""

from __future__ import annotations

import torch
from torch import nn

from dataset_pruning.models.base import MODELS, Classifier
from dataset_pruning.models.resnet import BasicBlock, _resnet


class SqueezeExcitation(nn.Module):
    """Channel gate: x * sigmoid(W2 relu(W1 mean_hw(x))), W1 of shape (channels // reduction, channels)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.excite(self.squeeze(x).flatten(1))
        return x * weights[:, :, None, None]


@MODELS.register("senet")
def senet(*, input_shape: tuple[int, ...], num_classes: int, width: int = 21, reduction: int = 16) -> Classifier:
    """SE-ResNet-18: BasicBlocks (2, 2, 2, 2) each gated by squeeze-excitation; features of width ``8 * width``."""
    if reduction < 1:
        raise ValueError(f"senet: reduction must be >= 1, got {reduction}")
    return _resnet(
        "senet",
        BasicBlock,
        (2, 2, 2, 2),
        input_shape=input_shape,
        num_classes=num_classes,
        width=width,
        gate_factory=lambda channels: SqueezeExcitation(channels, reduction),
    )
