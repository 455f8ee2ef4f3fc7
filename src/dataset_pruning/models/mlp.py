"""A multi-layer perceptron for vector inputs (MNIST-1D, digits)."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field
from torch import nn

from dataset_pruning.models.base import MODELS, Classifier


@MODELS.register("mlp")
def mlp(*, input_shape: tuple[int, ...], num_classes: int, hidden: int = 100,
        depth: Annotated[int, Field(ge=0)] = 2) -> Classifier:
    """``depth`` hidden layers of width ``hidden`` with ReLU, then the linear head (depth 0: a linear model)."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return Classifier(nn.Sequential(*layers), width, num_classes)
