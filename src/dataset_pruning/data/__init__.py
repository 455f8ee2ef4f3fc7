"""Data sources, one module each, behind one ``load_dataset(name, ...)``."""

from dataset_pruning.data import cifar, digits, idx, image_folder, mnist1d, tinyimagenet  # noqa: F401  (registration)
from dataset_pruning.data.base import (
    DATASETS,
    TensorData,
    check_loader_options,
    kept_indices,
    load_dataset,
    loader_options,
    pruned_subset,
)

__all__ = ["DATASETS", "TensorData", "check_loader_options", "kept_indices", "load_dataset", "loader_options", "pruned_subset"]
