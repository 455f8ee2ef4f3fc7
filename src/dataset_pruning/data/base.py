"""The in-memory data set that flows between pipeline stages, and the registry of sources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
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
        """The samples at ``indices`` (integers in [0, n), shape (k,)), in that order.

        An index outside [0, n) (negative ones included) or a non-integer index is a ``ValueError``.
        """
        indices = torch.as_tensor(indices)
        if indices.dtype == torch.bool or indices.is_floating_point() or indices.is_complex():
            raise ValueError(
                f"{self.name}: subset takes integer sample indices, got a {indices.dtype} tensor"
                + (" (for a boolean mask pass mask.nonzero().flatten())" if indices.dtype == torch.bool else "")
            )
        if indices.ndim > 1:
            raise ValueError(f"{self.name}: subset takes indices of shape (k,), got shape {tuple(indices.shape)}")
        indices = indices.long().reshape(-1)
        n = len(self)
        bad = indices[(indices < 0) | (indices >= n)]
        if len(bad):
            raise ValueError(
                f"{self.name}: subset index {int(bad[0])} is out of range for a data set of n = {n} samples "
                f"(valid: 0 to {n - 1}; {len(bad)} of the {len(indices)} indices are outside)"
            )
        return TensorData(self.x[indices], self.y[indices], self.num_classes, name or self.name)


# A loader takes (root, seed, **options) and returns (train, test); root and seed are ingest's, never options.
Loader = Callable[..., tuple[TensorData, TensorData]]
DATASETS: Registry[Loader] = Registry(
    "data set", runner={key: f"not a loader option: set ingest.{key}" for key in ("root", "seed")}
)


def loader_options(name: str) -> tuple[str, ...]:
    """The keyword options data set ``name``'s loader takes besides root and seed, from its signature."""
    return tuple(DATASETS.options(name))


def check_loader_options(name: str, options: Mapping[str, Any]) -> None:
    """``DATASETS.check``: an unknown option (with the closest match), or a value of the wrong type or range."""
    DATASETS.check(name, options)


def load_dataset(
    name: str, root: str | Path = "data/01_raw", seed: int | None = None, **options: Any
) -> tuple[TensorData, TensorData]:
    """Load the train and test split of data set ``name`` from ``root`` (nothing is downloaded).

    ``seed=None`` uses the loader's own default (mnist1d: 42, the ``mnist1d`` package's and the pipeline's), so
    ``load_dataset("mnist1d")`` is the data of a default ``kedro run``. An option the loader does not take is a
    ``ValueError`` that lists the ones it takes (``check_loader_options``).
    """
    check_loader_options(name, options)
    if seed is not None:
        options["seed"] = seed
    return DATASETS.get(name)(root=Path(root), **options)


def check_prunable(train: TensorData, test: TensorData) -> None:
    """A ``ValueError`` unless the splits can be pruned: labels in [0, num_classes), two classes or more, and a
    training sample in every class (so the test split holds no class the training split lacks). Called by the
    ingest node and the sweep on what ``load_dataset`` returns."""
    classes = {split.name: set(torch.unique(split.y).tolist()) for split in (train, test)}
    for name, found in classes.items():
        outside = sorted(c for c in found if not 0 <= c < train.num_classes)
        if outside:
            raise ValueError(f"{name}: labels {outside[:10]} lie outside [0, {train.num_classes}), the data set's "
                             "classes; check the data files")
    trained = classes[train.name]
    if len(trained) < 2:
        raise ValueError(
            f"{train.name} has {len(trained)} class(es) with training samples; pruning needs at least two "
            "(with one, every model is always right and eps is 0): add classes or choose another data set"
        )
    empty = sorted(set(range(train.num_classes)) - trained)
    if empty:
        tested = sorted(set(empty) & classes[test.name])
        raise ValueError(
            f"{train.name}: class(es) {empty[:10]} of the {train.num_classes} have no training sample"
            + (f", and {test.name} holds {tested[:10]}, which the model would never be trained on" if tested else "")
            + "; give every class training samples (or load more samples)"
        )


def missing_data_error(name: str, expected: Path, layout: str) -> FileNotFoundError:
    """An error that says exactly what to put where."""
    return FileNotFoundError(
        f"data set {name!r} was not found at {expected}. Nothing is downloaded at run time: put the files there "
        f"in this layout:\n{layout}\nor choose a built-in data set (ingest.dataset: mnist1d or digits)."
    )


def kept_indices(n: int, removed) -> np.ndarray:
    """The indices a selection keeps: [0, n) minus ``removed``, int64 sorted; removed indices outside [0, n) are a
    ValueError (the selection was made on another data set or order)."""
    removed = np.asarray(removed, dtype=np.int64).reshape(-1)
    if removed.size and (removed.min() < 0 or removed.max() >= n):
        raise ValueError(f"removed indices must lie in [0, {n}) for this data set of {n} samples; was the selection "
                         "made on another data set or order?")
    keep = np.ones(n, dtype=bool)
    keep[removed] = False
    return np.flatnonzero(keep).astype(np.int64)


def pruned_subset(dataset, removed) -> torch.utils.data.Subset:
    """The samples of ``dataset`` that a selection keeps, as a ``torch.utils.data.Subset`` (in index order).

    ``dataset``: a ``TensorData`` (wrapped as a ``TensorDataset`` of (x, y)) or any map-style torch dataset in the
    same sample order as the training set the selection was made on (docs/data.md: how indices map onto each
    on-disk format). ``removed``: the removed indices (``removed_indices``, or ``removed_indices.npy`` of
    ``index_sets``).
    """
    source = torch.utils.data.TensorDataset(dataset.x, dataset.y) if isinstance(dataset, TensorData) else dataset
    return torch.utils.data.Subset(source, kept_indices(len(dataset), removed).tolist())
