"""What a stored output was computed on: the fingerprint of a training set, compared before a stage runs.

A fingerprint is a small dict: the data set's name, the ingest seed and options, n, and a hash of the labels.
Two outputs whose fingerprints differ were computed on different data and must not meet in one stage.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from dataset_pruning.data import TensorData


def fingerprint(train: TensorData, seed: int | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint of training set ``train`` (labels hashed as int64 bytes, so it is cheap at any n)."""
    labels = train.y.detach().cpu().contiguous().numpy().astype("<i8")
    return {
        "dataset": train.name,
        "seed": seed,
        "options": dict(options or {}),
        "n": len(train),
        "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest()[:16],
    }


def describe(print_: dict[str, Any]) -> str:
    """One line for messages: ``mnist1d-train (seed 42, n = 4000, labels 3fa2...)``."""
    options = f", options {print_['options']}" if print_.get("options") else ""
    return f"{print_['dataset']} (seed {print_['seed']}{options}, n = {print_['n']}, labels {print_['labels_sha256']})"


def check_rows(n: int, where: str, **arrays: Any) -> None:
    """Every array in ``arrays`` has n rows (one per training sample), else a ``ValueError`` naming both lengths."""
    for name, array in arrays.items():
        if array is not None and len(array) != n:
            raise ValueError(
                f"{where}: {name} has {len(array)} rows but train_set has {n} samples; they come from different "
                "runs or data sets. Rerun the stages that write it, or pin matching versions (--load-versions)"
            )


def check_indices(n: int, indices: Any, where: str) -> None:
    """Sample indices lie in [0, n) and are distinct, else a ``ValueError`` naming n and the bad ones."""
    indices = np.asarray(indices, dtype=np.int64)
    bad = indices[(indices < 0) | (indices >= n)]
    if bad.size:
        raise ValueError(
            f"{where}: removed_indices holds {bad.size} index(es) outside [0, {n}) (e.g. {bad[:3].tolist()}) for a "
            f"train_set of {n} samples; it was selected on other data. Rerun optimization_selection"
        )
    if np.unique(indices).size != indices.size:
        raise ValueError(f"{where}: removed_indices lists some samples twice; rerun optimization_selection")
