"""One entry point from a scoring method's output to the removed indices: what the select node and the sweep call.

A scalar score (``keep`` set) goes through the score rule (remove the end it does not keep); vectors (another
method's, or the last-layer S when ``scores`` is None) through the Eq. 3 / Eq. 4 solver. Theorem 1's eps is always
measured on the last-layer S, so every method is compared on the same axis.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dataset_pruning.selection.objective import solve_selection, theorem_quantities
from dataset_pruning.selection.score_rule import remove_by_score


def select_for_method(
    influence: np.ndarray,
    scores: np.ndarray | None = None,
    keep: str | None = None,
    *,
    labels: np.ndarray,
    problem: str = "cardinality",
    solver: str = "hybrid",
    ratio: float | None = None,
    eps: float | None = None,
    seed: int = 0,
    class_balanced: bool = False,
    class_floor: float = 0.0,
    projection_dim: int | None = None,
    bound_iterations: int = 100,
    options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """(removed indices, int64 (m,) sorted; metrics: eps, eps/n, m/n^2, objective, seconds[, bound]).

    influence : (n, d) last-layer S; scores : (n,) with ``keep`` 'highest'|'lowest', (n, d') vectors, or None (S).
    Defaults are the pipeline's (conf/base/parameters_optimization_selection.yml).
    """
    if keep is not None:
        if problem != "cardinality":
            raise ValueError(
                "scalar scores are selected by keeping one end at a ratio: use problem 'cardinality', or a vector "
                "method for Eq. 3"
            )
        start = time.perf_counter()
        removed = remove_by_score(np.asarray(scores), keep, ratio, labels=labels, class_balanced=class_balanced)
        quantities = theorem_quantities(influence, removed)
        return removed, {**quantities, "objective": quantities["eps"], "seconds": time.perf_counter() - start}
    vectors = influence if scores is None else np.asarray(scores)
    result = solve_selection(
        vectors, problem=problem, solver=solver, ratio=ratio, eps=eps, labels=labels, class_balanced=class_balanced,
        class_floor=class_floor, projection_dim=projection_dim, bound_iterations=bound_iterations,
        options={"seed": seed, **(options or {})},
    )
    metrics = {key: float(value) for key, value in result.metrics().items()}
    if vectors is not influence:  # Theorem 1's eps stays the last-layer one
        metrics.update(theorem_quantities(influence, result.removed))
    return result.removed, metrics
