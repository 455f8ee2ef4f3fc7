"""Data sources, one module each, behind one ``load_dataset(name, ...)``."""

from dataset_pruning.data import cifar, digits, image_folder, mnist1d, tinyimagenet  # noqa: F401  (registration)
from dataset_pruning.data.base import DATASETS, TensorData, load_dataset

__all__ = ["DATASETS", "TensorData", "load_dataset"]
