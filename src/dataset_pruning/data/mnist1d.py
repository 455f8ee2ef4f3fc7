"""MNIST-1D, regenerated offline from a seed by the ``mnist1d`` package (never its download path)."""

from __future__ import annotations

from pathlib import Path

import torch

from dataset_pruning.data.base import DATASETS, TensorData


@DATASETS.register("mnist1d")
def load_mnist1d(root: Path, seed: int = 42, num_samples: int = 5000, train_split: float = 0.8):
    """4000 train / 1000 test sequences of length 40, 10 classes (the package defaults), x of shape (n, 40)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = int(seed)
    args.num_samples = int(num_samples)
    args.train_split = float(train_split)
    raw = make_dataset(args)
    train = TensorData(torch.as_tensor(raw["x"]), torch.as_tensor(raw["y"]), 10, "mnist1d-train")
    test = TensorData(torch.as_tensor(raw["x_test"]), torch.as_tensor(raw["y_test"]), 10, "mnist1d-test")
    return train, test
