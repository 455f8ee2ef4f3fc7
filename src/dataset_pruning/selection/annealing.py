"""Simulated annealing, the paper's solver (Sec. 4.2): a random start, swap or flip moves, a geometric
temperature schedule scaled to the objective's typical move size, and a move or time budget."""

from __future__ import annotations

import math
import time

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.objective import SOLVERS


@SOLVERS.register("annealing")
class AnnealingSolver:
    """Eq. 4: state = a removed set of size m; a move swaps one removed and one kept sample; energy = ||W^T S||.
    Eq. 3: state = a feasible removed set; a move adds, drops or swaps one sample; energy = -|W|; infeasible
    states are rejected.

    The start temperature is ``initial_acceptance``-calibrated: the median |energy change| of 200 random moves,
    divided by -ln(initial_acceptance); it decays geometrically to ``final_ratio`` of that over ``steps`` moves
    or ``time_budget_s`` seconds, whichever ends first.
    """

    def __init__(
        self,
        seed: int = 0,
        steps: int = 200_000,
        time_budget_s: float = 30.0,
        initial_acceptance: float = 0.5,
        final_ratio: float = 1e-4,
    ) -> None:
        self.seed, self.steps, self.time_budget_s = seed, int(steps), float(time_budget_s)
        self.initial_acceptance, self.final_ratio = initial_acceptance, final_ratio

    def _temperatures(self, scale: float):
        start = max(scale, 1e-300) / -math.log(self.initial_acceptance)
        decay = self.final_ratio ** (1.0 / max(self.steps - 1, 1))
        deadline = time.perf_counter() + self.time_budget_s
        temperature = start
        for k in range(self.steps):
            if k % 256 == 0 and time.perf_counter() > deadline:
                return
            yield temperature
            temperature *= decay

    def cardinality(self, influence: np.ndarray, m: int) -> np.ndarray:
        n = len(influence)
        rng = numpy_rng(self.seed)
        if m in (0, n):
            return np.arange(m, dtype=np.int64)
        state = rng.permutation(n)  # state[:m] removed, state[m:] kept
        residual = influence[state[:m]].sum(axis=0)
        norm = float(np.linalg.norm(residual))
        best, best_norm = state[:m].copy(), norm

        def propose():
            a, b = int(rng.integers(m)), int(rng.integers(m, n))
            candidate = residual - influence[state[a]] + influence[state[b]]
            return a, b, candidate, float(np.linalg.norm(candidate))

        scale = float(np.median([abs(propose()[3] - norm) for _ in range(200)]))
        for temperature in self._temperatures(scale):
            a, b, candidate, new_norm = propose()
            delta = new_norm - norm
            if delta <= 0 or rng.random() < math.exp(-delta / temperature):
                state[a], state[b] = state[b], state[a]
                residual, norm = candidate, new_norm
                if norm < best_norm:
                    best, best_norm = state[:m].copy(), norm
        return best

    def generalization(self, influence: np.ndarray, eps: float) -> np.ndarray:
        n = len(influence)
        rng = numpy_rng(self.seed)
        removed = np.zeros(n, dtype=bool)
        residual = np.zeros(influence.shape[1])
        count, best = 0, np.empty(0, dtype=np.int64)
        for temperature in self._temperatures(1.0):
            i = int(rng.integers(n))
            if removed[i]:
                j = int(rng.integers(n))
                if not removed[j] and rng.random() < 0.5:  # swap i out, j in: same size
                    candidate = residual - influence[i] + influence[j]
                    if np.linalg.norm(candidate) <= eps:
                        removed[i], removed[j], residual = False, True, candidate
                elif rng.random() < math.exp(-1.0 / temperature):  # drop i: one fewer removed
                    removed[i], residual, count = False, residual - influence[i], count - 1
            else:
                candidate = residual + influence[i]
                if np.linalg.norm(candidate) <= eps:
                    removed[i], residual, count = True, candidate, count + 1
                    if count > len(best):
                        best = np.flatnonzero(removed)
        return best
