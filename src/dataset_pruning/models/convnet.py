"""The ConvNet family of the paper's NAS experiment (Sec. 6.5), registered as the model ``nas_convnet``.

The network lives here, among the models, so that any process that builds a model by name (a pipeline node, a
sweep's Dask worker, a reloaded ``ModelSpec``) knows it without importing ``nas``; ``nas/space.py`` holds the
720-point grid over it (``ConvNetArch``, ``search_space``) and imports the choices below.

One block is conv 3x3 (padding 1) -> norm -> activation -> pool (kernel 2, stride 2); the blocks are followed by
the flattened features and one linear head (``models.base.Classifier``). Inputs of shape (L,) or (C, L) use Conv1d
(MNIST-1D: (40,)), inputs of shape (C, H, W) use Conv2d. Normalization layers:

- batch: BatchNorm1d/2d(C)
- layer: GroupNorm(1, C), i.e. normalised over (C, L) or (C, H, W) per sample with a per-channel affine; unlike
  the reference's LayerNorm([C, H, W]) it does not depend on the input size (same statistics, fewer affine weights)
- instance: GroupNorm(C, C) (as the reference)
- group: GroupNorm(4, C) (as the reference)
"""

from __future__ import annotations

import math

from torch import nn

from dataset_pruning.models.base import MODELS, Classifier
from dataset_pruning.models.cnn1d import _AddChannel

WIDTHS = (32, 64, 128, 256)
DEPTHS = (1, 2, 3, 4)
ACTIVATIONS = ("sigmoid", "relu", "leakyrelu")
NORMALIZATIONS = ("none", "batch", "layer", "instance", "group")
POOLINGS = ("none", "max", "avg")
GROUPS = 4  # of group normalization


def check_choices(width: int, depth: int, activation: str, normalization: str, pooling: str) -> None:
    """Each choice must be a point of the grid; an unknown one raises ``ValueError`` listing the known."""
    for field, value, known in (
        ("width", width, WIDTHS),
        ("depth", depth, DEPTHS),
        ("activation", activation, ACTIVATIONS),
        ("normalization", normalization, NORMALIZATIONS),
        ("pooling", pooling, POOLINGS),
    ):
        if value not in known:
            raise ValueError(f"unknown {field} {value!r}; known: {', '.join(map(str, known))}")


def convnet_name(width: int, depth: int, activation: str, normalization: str, pooling: str) -> str:
    """The architecture's unique name, e.g. ``w128-d3-relu-instance-avg``."""
    return f"w{width}-d{depth}-{activation}-{normalization}-{pooling}"


def _activation(name: str) -> nn.Module:
    return {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "leakyrelu": lambda: nn.LeakyReLU(0.01)}[name]()


def _normalization(name: str, channels: int, dims: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "batch":
        return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    if name == "instance":
        return nn.GroupNorm(channels, channels)
    if channels % GROUPS:
        raise ValueError(f"group normalization needs channels divisible by {GROUPS}, got {channels}; change width_scale")
    return nn.GroupNorm(GROUPS, channels)


def _pool(name: str, dims: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if dims == 1:
        return (nn.MaxPool1d if name == "max" else nn.AvgPool1d)(2, 2)
    return (nn.MaxPool2d if name == "max" else nn.AvgPool2d)(2, 2)


@MODELS.register("nas_convnet")
def nas_convnet(
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 128,
    depth: int = 3,
    activation: str = "relu",
    normalization: str = "instance",
    pooling: str = "avg",
    width_scale: float = 1.0,
) -> Classifier:
    """A ConvNet of the search space (defaults: the reference's default net). ``width_scale`` multiplies the
    channels (e.g. 1/8 for fast smoke tests); 1 is the paper's space."""
    check_choices(width, depth, activation, normalization, pooling)
    if len(input_shape) not in (1, 2, 3):
        raise ValueError(f"input_shape must be (L,), (C, L) or (C, H, W), got {input_shape}")
    dims = 2 if len(input_shape) == 3 else 1
    spatial = input_shape[-dims:]
    if pooling != "none" and min(spatial) < 2**depth:
        raise ValueError(
            f"{convnet_name(width, depth, activation, normalization, pooling)} halves the input {depth} times, but "
            f"its size {tuple(spatial)} is smaller than 2**{depth} = {2**depth}; use a larger input or a smaller depth"
        )
    channels = int(round(width * width_scale))
    if channels < 1:
        raise ValueError(f"width {width} x width_scale {width_scale} leaves no channel; raise width_scale")
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    in_channels = 1 if len(input_shape) == 1 else input_shape[0]
    layers: list[nn.Module] = [_AddChannel()] if len(input_shape) == 1 else []
    for _ in range(depth):
        layers += [
            conv(in_channels, channels, 3, padding=1),
            _normalization(normalization, channels, dims),
            _activation(activation),
            _pool(pooling, dims),
        ]
        in_channels = channels
    features = nn.Sequential(*layers, nn.Flatten())
    # computed, not by a dry forward pass, which would move the batch-norm running statistics
    out = [size // 2**depth if pooling != "none" else size for size in spatial]
    return Classifier(features, channels * math.prod(out), num_classes)
