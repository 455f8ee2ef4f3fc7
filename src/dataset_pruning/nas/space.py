"""The 720-ConvNet search space of the paper's NAS experiment (Sec. 6.5, Table 1).

Grid (the Dataset Condensation ConvNet family, ``VICO-UoE/DatasetCondensation`` ``networks.py``, without swish):
width {32, 64, 128, 256} x depth {1, 2, 3, 4} x activation {sigmoid, relu, leakyrelu} x normalization {none, batch,
layer, instance, group} x pooling {none, max, avg} = 4 * 4 * 3 * 5 * 3 = 720 architectures.

The network itself is the registered model ``nas_convnet`` (``models/convnet.py``: its blocks and normalization
layers), so that ``models`` never imports ``nas``; this module is the grid over it.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from dataset_pruning.models.convnet import (  # noqa: F401  (the grid's choices and the builder, importable here)
    ACTIVATIONS,
    DEPTHS,
    GROUPS,
    NORMALIZATIONS,
    POOLINGS,
    WIDTHS,
    check_choices,
    convnet_name,
    nas_convnet,
)
from dataset_pruning.runtime import numpy_rng
from dataset_pruning.training import ModelSpec


@dataclass(frozen=True)
class ConvNetArch:
    """One point of the grid; ``name`` is unique, e.g. ``w128-d3-relu-instance-avg``."""

    width: int = 128
    depth: int = 3
    activation: str = "relu"
    normalization: str = "instance"
    pooling: str = "avg"

    def __post_init__(self) -> None:
        check_choices(self.width, self.depth, self.activation, self.normalization, self.pooling)

    @property
    def name(self) -> str:
        return convnet_name(self.width, self.depth, self.activation, self.normalization, self.pooling)

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

    def spec(self, input_shape: tuple[int, ...], num_classes: int, width_scale: float = 1.0) -> ModelSpec:
        """The ``ModelSpec`` of the registered builder ``nas_convnet`` (build, save and reload as any model)."""
        return ModelSpec("nas_convnet", tuple(input_shape), int(num_classes), {**asdict(self), "width_scale": width_scale})


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


_SPACE: tuple[ConvNetArch, ...] = tuple(
    ConvNetArch(*point) for point in itertools.product(WIDTHS, DEPTHS, ACTIVATIONS, NORMALIZATIONS, POOLINGS)
)
_INDEX: dict[ConvNetArch, int] = {arch: i for i, arch in enumerate(_SPACE)}

__all__ = ["ConvNetArch", "search_space", "sample_architectures", "nas_convnet"]
