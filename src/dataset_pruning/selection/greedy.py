"""Greedy solvers: grow the removed set one sample at a time, each step taking the sample that keeps
||sum S_i||_2 smallest. Each step costs one matrix-vector product S @ S_j, O(n d)."""

from __future__ import annotations

import numpy as np

from dataset_pruning.selection.objective import SOLVERS


def greedy_path(influence: np.ndarray, start: np.ndarray, steps: int, sign: float = 1.0):
    """Pick ``steps`` distinct rows j_1, j_2, ... each minimising ||start + sign * (S_j1 + ... + S_jk)||_2.

    Returns (order of shape (steps,), norms of shape (steps,): the norm after each pick).
    """
    n = len(influence)
    residual = np.array(start, dtype=np.float64)
    projections = sign * (influence @ residual)  # <residual, sign S_i>
    squares = np.einsum("ij,ij->i", influence, influence)
    available = np.ones(n, dtype=bool)
    order = np.empty(steps, dtype=np.int64)
    norms = np.empty(steps, dtype=np.float64)
    current = float(residual @ residual)
    for k in range(steps):
        increase = np.where(available, squares + 2.0 * projections, np.inf)
        j = int(np.argmin(increase))
        order[k] = j
        available[j] = False
        current += increase[j]
        norms[k] = np.sqrt(max(current, 0.0))
        projections += influence @ influence[j]
    return order, norms


@SOLVERS.register("greedy")
class GreedySolver:
    """Greedy for both problems. For Eq. 4 with m > n/2 it grows the kept set instead (n - m picks matching
    the total), which costs fewer steps and balances better."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed  # deterministic; accepted so every solver takes the same options

    def cardinality(self, influence: np.ndarray, m: int) -> np.ndarray:
        n, d = influence.shape
        if m <= n - m:
            return greedy_path(influence, np.zeros(d), m)[0]
        kept = greedy_path(influence, influence.sum(axis=0), n - m, sign=-1.0)[0]
        return np.setdiff1d(np.arange(n), kept)

    def generalization(self, influence: np.ndarray, eps: float) -> np.ndarray:
        """The longest prefix of the greedy path whose norm stays within eps."""
        order, norms = greedy_path(influence, np.zeros(influence.shape[1]), len(influence))
        feasible = np.flatnonzero(norms <= eps)
        return order[: feasible[-1] + 1] if feasible.size else order[:0]
