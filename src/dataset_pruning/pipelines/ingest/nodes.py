"""Ingest: load the train and test split of the configured data set."""

from __future__ import annotations

from dataset_pruning.config import IngestParams, block
from dataset_pruning.data import TensorData, load_dataset
from dataset_pruning.data.base import check_prunable


def load_splits(params: dict) -> tuple[TensorData, TensorData]:
    """The splits, refused here if they cannot be pruned (``check_prunable``), before any training."""
    p: IngestParams = block("ingest", params)
    train, test = load_dataset(p.dataset, root=p.root, seed=p.seed, **p.options)
    check_prunable(train, test)
    return train, test
