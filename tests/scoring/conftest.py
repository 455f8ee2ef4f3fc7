"""Tiny synthetic data and models shared by the scoring tests (seconds on 2 CPU cores)."""

from __future__ import annotations

import pytest
import torch

from dataset_pruning.data import TensorData
from dataset_pruning.training import ModelSpec


def blobs(n: int = 60, features: int = 6, classes: int = 3, seed: int = 0, spread: float = 1.5) -> TensorData:
    """Gaussian class blobs: x of shape (n, features), y of shape (n,)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    centres = spread * torch.randn(classes, features, generator=g)
    x = centres[y] + torch.randn(n, features, generator=g)
    return TensorData(x, y, classes, "blobs")


@pytest.fixture
def tiny_data() -> TensorData:
    return blobs()


@pytest.fixture
def tiny_spec(tiny_data) -> ModelSpec:
    return ModelSpec("mlp", tiny_data.input_shape, tiny_data.num_classes, {"hidden": 8, "depth": 1})


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are tiny: one thread avoids oversubscribing the 2 CI cores (restored after each test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
