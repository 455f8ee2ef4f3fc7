"""The random baseline: it ignores S (Eq. 4) or removes a random order's longest feasible prefix (Eq. 3)."""

from __future__ import annotations

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.objective import SOLVERS


@SOLVERS.register("random")
class RandomSolver:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def cardinality(self, influence: np.ndarray, m: int) -> np.ndarray:
        return numpy_rng(self.seed).choice(len(influence), size=m, replace=False)

    def generalization(self, influence: np.ndarray, eps: float) -> np.ndarray:
        order = numpy_rng(self.seed).permutation(len(influence))
        norms = np.linalg.norm(np.cumsum(influence[order], axis=0), axis=1)
        feasible = np.flatnonzero(norms <= eps)
        return order[: feasible[-1] + 1] if feasible.size else order[:0]
