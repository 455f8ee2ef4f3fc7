"""The random baseline: it ignores S (Eq. 4: m_g random samples of each group) or removes a random order's
longest feasible prefix (Eq. 3, each class stopping at its cap)."""

from __future__ import annotations

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.solver_registry import SOLVERS
from dataset_pruning.selection.budgets import as_caps, as_quota
from dataset_pruning.selection.objective import longest_feasible_prefix, removal_norm
from dataset_pruning.selection.clock import traced


@SOLVERS.register("random")
class RandomSolver:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.trace = None

    def cardinality(self, influence: np.ndarray, m, groups: np.ndarray | None = None) -> np.ndarray:
        trace = traced(self)
        codes, quota = as_quota(len(influence), m, groups)
        rng = numpy_rng(self.seed)
        removed = np.concatenate(
            [rng.choice(np.flatnonzero(codes == g), size=int(q), replace=False) for g, q in enumerate(quota)]
        ).astype(np.int64)
        trace.record(removal_norm(influence, removed))
        return np.sort(removed)

    def generalization(self, influence: np.ndarray, eps: float, groups=None, caps=None) -> np.ndarray:
        trace = traced(self)
        codes, caps = as_caps(len(influence), groups, caps)
        order = numpy_rng(self.seed).permutation(len(influence))
        removed = longest_feasible_prefix(influence, order, eps, codes, caps)
        trace.record(-float(len(removed)))
        return removed
