"""Optimization selection: solve Eq. 4 or Eq. 3 over the influence vectors (step 3)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dataset_pruning.config import SelectionParams, scalar_scores_need_cardinality
from dataset_pruning.data import TensorData
from dataset_pruning.provenance import check_rows
from dataset_pruning.selection import solve_selection, theorem_quantities
from dataset_pruning.selection.score_rule import remove_by_score


def select_samples(
    influence_vectors: np.ndarray, train_set: TensorData, params: dict, sample_scores: dict[str, Any] | None = None
) -> tuple[list[int], dict[str, Any]]:
    """removed_indices : sorted list of the training indices to remove; selection_metrics : the Theorem 1
    quantities (eps, eps/n, m/n^2), the solve's time, objective and relaxation bound, as MLflow metrics.

    ``sample_scores`` (influence_scoring.method's output) decides what is selected on: a scalar score by the score
    rule (remove the end it does not keep, ``ratio * n`` samples), another method's vectors by the solver, and
    none (last_layer_influence) ``influence_vectors``. eps is always measured on ``influence_vectors``.
    """
    p = SelectionParams.model_validate(params)
    labels = train_set.y.numpy()
    scores = None if sample_scores is None else sample_scores.get("values")
    check_rows(len(labels), "optimization_selection", influence_vectors=influence_vectors, sample_scores=scores)
    if sample_scores is not None and sample_scores.get("keep") is not None:
        if p.problem != "cardinality":
            raise ValueError(scalar_scores_need_cardinality(sample_scores["method"]))
        start = time.perf_counter()
        removed = remove_by_score(
            np.asarray(sample_scores["values"]), sample_scores["keep"], p.ratio, labels=labels,
            class_balanced=p.class_balanced,
        )
        seconds = time.perf_counter() - start
        quantities = theorem_quantities(influence_vectors, removed)
        values = {**quantities, "objective": quantities["eps"], "seconds": seconds}
        return removed.tolist(), {key: {"value": float(value), "step": 0} for key, value in values.items()}
    vectors = influence_vectors
    if sample_scores is not None and sample_scores.get("values") is not None:
        vectors = np.asarray(sample_scores["values"])
    result = solve_selection(
        vectors,
        problem=p.problem,
        solver=p.solver,
        ratio=p.ratio,
        eps=p.eps,
        labels=labels,
        class_balanced=p.class_balanced,
        class_floor=p.class_floor,
        projection_dim=p.projection_dim,
        bound_iterations=p.bound_iterations,
        options={"seed": p.seed, **p.options},
    )
    metrics = {key: float(value) for key, value in result.metrics().items()}
    if vectors is not influence_vectors:  # Theorem 1's eps stays the last-layer one, as in pruning_metrics
        metrics.update(theorem_quantities(influence_vectors, result.removed))
    return result.removed.tolist(), {key: {"value": value, "step": 0} for key, value in metrics.items()}
