"""Optimization selection: solve Eq. 4 or Eq. 3 over the influence vectors (step 3)."""

from __future__ import annotations

import numpy as np

from dataset_pruning.config import SelectionParams
from dataset_pruning.selection import select_removed


def select_samples(influence_vectors: np.ndarray, params: dict) -> list[int]:
    """removed_indices : sorted list of the training indices to remove."""
    p = SelectionParams.model_validate(params)
    removed = select_removed(
        influence_vectors,
        problem=p.problem,
        solver=p.solver,
        ratio=p.ratio,
        eps=p.eps,
        options={"seed": p.seed, **p.options},
    )
    return removed.tolist()
