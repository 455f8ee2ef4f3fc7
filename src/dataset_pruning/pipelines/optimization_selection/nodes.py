"""Optimization selection: solve Eq. 4 or Eq. 3 over the influence vectors (step 3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset_pruning.config import SelectionParams
from dataset_pruning.data import TensorData
from dataset_pruning.selection import solve_selection


def select_samples(influence_vectors: np.ndarray, train_set: TensorData, params: dict) -> tuple[list[int], dict[str, Any]]:
    """removed_indices : sorted list of the training indices to remove; selection_metrics : the Theorem 1
    quantities (eps, eps/n, m/n^2), the solve's time, objective and relaxation bound, as MLflow metrics."""
    p = SelectionParams.model_validate(params)
    result = solve_selection(
        influence_vectors,
        problem=p.problem,
        solver=p.solver,
        ratio=p.ratio,
        eps=p.eps,
        labels=train_set.y.numpy(),
        class_balanced=p.class_balanced,
        class_floor=p.class_floor,
        projection_dim=p.projection_dim,
        bound_iterations=p.bound_iterations,
        options={"seed": p.seed, **p.options},
    )
    metrics = {key: {"value": float(value), "step": 0} for key, value in result.metrics().items()}
    return result.removed.tolist(), metrics
