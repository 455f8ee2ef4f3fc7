"""Ingest: load the train and test split of the configured data set."""

from __future__ import annotations

from dataset_pruning.config import IngestParams
from dataset_pruning.data import TensorData, load_dataset


def load_splits(params: dict) -> tuple[TensorData, TensorData]:
    p = IngestParams.model_validate(params)
    return load_dataset(p.dataset, root=p.root, seed=p.seed, **p.options)
