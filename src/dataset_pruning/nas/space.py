"""The 720-ConvNet search space of the paper's NAS experiment (Sec. 6.5, Table 1).

Grid (the Dataset Condensation ConvNet family, ``VICO-UoE/DatasetCondensation`` ``networks.py``, without swish):
width {32, 64, 128, 256} x depth {1, 2, 3, 4} x activation {sigmoid, relu, leakyrelu} x normalization {none, batch,
layer, instance, group} x pooling {none, max, avg} = 4 * 4 * 3 * 5 * 3 = 720 architectures.

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

import itertools
import math
from dataclasses import asdict, dataclass
from torch import nn

from dataset_pruning.models.base import MODELS, Classifier
from dataset_pruning.models.cnn1d import _AddChannel
from dataset_pruning.runtime import numpy_rng
from dataset_pruning import training  # a module, not its names: models/__init__ imports this file

WIDTHS = (32, 64, 128, 256)
DEPTHS = (1, 2, 3, 4)
ACTIVATIONS = ("sigmoid", "relu", "leakyrelu")
NORMALIZATIONS = ("none", "batch", "layer", "instance", "group")
POOLINGS = ("none", "max", "avg")
GROUPS = 4  # of group normalization


@dataclass(frozen=True)
class ConvNetArch:
    """One point of the grid; ``name`` is unique, e.g. ``w128-d3-relu-instance-avg``."""

    width: int = 128
    depth: int = 3
    activation: str = "relu"
    normalization: str = "instance"
    pooling: str = "avg"

    def __post_init__(self) -> None:
        for field, value, known in (
            ("width", self.width, WIDTHS),
            ("depth", self.depth, DEPTHS),
            ("activation", self.activation, ACTIVATIONS),
            ("normalization", self.normalization, NORMALIZATIONS),
            ("pooling", self.pooling, POOLINGS),
        ):
            if value not in known:
                raise ValueError(f"unknown {field} {value!r}; known: {', '.join(map(str, known))}")

    @property
    def name(self) -> str:
        return f"w{self.width}-d{self.depth}-{self.activation}-{self.normalization}-{self.pooling}"

    @property
    def index(self) -> int:
        """Position in ``search_space()``."""
        return _INDEX[self]

    @classmethod
    def from_name(cls, name: str) -> "ConvNetArch":
        try:
            width, depth, activation, normalization, pooling = name.split("-")
            return cls(int(width[1:]), int(depth[1:]), activation, normalization, pooling)
        except ValueError as error:
            raise ValueError(f"{name!r} is not an architecture name like 'w128-d3-relu-instance-avg': {error}") from None

    def spec(self, input_shape: tuple[int, ...], num_classes: int, width_scale: float = 1.0) -> "training.ModelSpec":
        """The ``ModelSpec`` of the registered builder ``nas_convnet`` (build, save and reload as any model)."""
        return training.ModelSpec("nas_convnet", tuple(input_shape), int(num_classes), {**asdict(self), "width_scale": width_scale})


def search_space() -> list[ConvNetArch]:
    """All 720 architectures in a fixed order: width, then depth, activation, normalization, pooling."""
    return list(_SPACE)


def sample_architectures(k: int | None, seed: int) -> list[ConvNetArch]:
    """``k`` distinct architectures drawn uniformly without replacement (``None``: all 720), in space order."""
    if k is None or k == len(_SPACE):
        return search_space()
    if not 1 <= k <= len(_SPACE):
        raise ValueError(f"sample size must lie in [1, {len(_SPACE)}] (or null for the whole space), got {k}")
    chosen = numpy_rng(seed).choice(len(_SPACE), size=int(k), replace=False)
    return [_SPACE[i] for i in sorted(chosen.tolist())]


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
    arch = ConvNetArch(width, depth, activation, normalization, pooling)
    if len(input_shape) not in (1, 2, 3):
        raise ValueError(f"input_shape must be (L,), (C, L) or (C, H, W), got {input_shape}")
    dims = 2 if len(input_shape) == 3 else 1
    spatial = input_shape[-dims:]
    if pooling != "none" and min(spatial) < 2**depth:
        raise ValueError(
            f"{arch.name} halves the input {depth} times, but its size {tuple(spatial)} is smaller than "
            f"2**{depth} = {2**depth}; use a larger input or a smaller depth"
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


_SPACE: tuple[ConvNetArch, ...] = tuple(
    ConvNetArch(*point) for point in itertools.product(WIDTHS, DEPTHS, ACTIVATIONS, NORMALIZATIONS, POOLINGS)
)
_INDEX: dict[ConvNetArch, int] = {arch: i for i, arch in enumerate(_SPACE)}

__all__ = ["ConvNetArch", "search_space", "sample_architectures", "nas_convnet"]
