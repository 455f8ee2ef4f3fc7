"""The random baseline: it ignores S (Eq. 4: m_g random samples of each group) or removes a random order's
longest feasible prefix (Eq. 3, each class stopping at its cap)."""

from __future__ import annotations

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.solver_registry import SOLVERS, Solver
from dataset_pruning.selection.objective import longest_feasible_prefix, removal_norm


@SOLVERS.register("random")
class RandomSolver(Solver):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        rng = numpy_rng(self.seed)
        removed = np.concatenate(
            [rng.choice(np.flatnonzero(codes == g), size=int(q), replace=False) for g, q in enumerate(quota)]
        ).astype(np.int64)
        self.trace.record(removal_norm(influence, removed))
        return np.sort(removed)

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        order = numpy_rng(self.seed).permutation(len(influence))
        removed = longest_feasible_prefix(influence, order, eps, codes, caps)
        self.trace.record(-float(len(removed)))
        return removed
