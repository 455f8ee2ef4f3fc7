"""The in-memory data set that flows between pipeline stages, and the registry of sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from dataset_pruning.registry import Registry


@dataclass
class TensorData:
    """A labelled data set held as tensors.

    x : Tensor of shape (n_samples, *input_shape), float32
    y : Tensor of shape (n_samples,), int64 class labels in [0, num_classes)
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"{self.name}: x has {self.x.shape[0]} samples but y has {self.y.shape[0]}; they must match"
            )
        if self.y.ndim != 1:
            raise ValueError(f"{self.name}: labels must have shape (n_samples,), got {tuple(self.y.shape)}")
        self.y = self.y.long()
        self.x = self.x.float()

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, indices: torch.Tensor, name: str | None = None) -> "TensorData":
        """The samples at ``indices`` (int64, shape (k,)), in that order."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorData(self.x[indices], self.y[indices], self.num_classes, name or self.name)


# A loader takes (root, seed, **options) and returns (train, test).
Loader = Callable[..., tuple[TensorData, TensorData]]
DATASETS: Registry[Loader] = Registry("data set")


def load_dataset(name: str, root: str | Path = "data/01_raw", seed: int = 0, **options) -> tuple[TensorData, TensorData]:
    """Load the train and test split of data set ``name`` from ``root`` (nothing is downloaded)."""
    return DATASETS.get(name)(root=Path(root), seed=seed, **options)


def missing_data_error(name: str, expected: Path, layout: str) -> FileNotFoundError:
    """An error that says exactly what to put where."""
    return FileNotFoundError(
        f"data set {name!r} was not found at {expected}. Nothing is downloaded at run time: put the files there "
        f"in this layout:\n{layout}\nor choose a built-in data set (ingest.dataset: mnist1d or digits)."
    )
