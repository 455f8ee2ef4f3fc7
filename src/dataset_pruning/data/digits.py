"""scikit-learn's 8x8 digits, split reproducibly into train and test."""

from __future__ import annotations

from pathlib import Path

import torch

from dataset_pruning.data.base import DATASETS, TensorData


@DATASETS.register("digits")
def load_digits_dataset(root: Path, seed: int = 0, test_fraction: float = 0.25):
    """1797 samples, x of shape (n, 64) scaled to [0, 1], a stratified split seeded by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(bunch.target)
    train_idx, test_idx = train_test_split(
        torch.arange(len(y)).numpy(), test_size=test_fraction, random_state=int(seed), stratify=y.numpy()
    )
    return (
        TensorData(x[train_idx], y[train_idx], 10, "digits-train"),
        TensorData(x[test_idx], y[test_idx], 10, "digits-test"),
    )
