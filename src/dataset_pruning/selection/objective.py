"""The Eq. 3 / Eq. 4 objective in one place, the solver registry and the one entry point ``select_removed``.

S is the (n, d) matrix of influence vectors; W in {0, 1}^n marks removed samples (W_i = 1: removed).
- Eq. 4, cardinality-guaranteed pruning: minimise ||W^T S||_2 subject to sum W = m.
- Eq. 3, generalization-guaranteed pruning: maximise sum W subject to ||W^T S||_2 <= eps.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np

from dataset_pruning.registry import Registry

Problem = Literal["cardinality", "generalization"]


def removal_norm(influence: np.ndarray, removed: np.ndarray) -> float:
    """eps = ||sum_{i in removed} S_i||_2, accumulated in float64."""
    removed = np.asarray(removed, dtype=np.int64)
    if removed.size == 0:
        return 0.0
    return float(np.linalg.norm(np.asarray(influence, dtype=np.float64)[removed].sum(axis=0)))


class Solver(Protocol):
    """A solver is built from its options (seed included) and answers both problems."""

    def cardinality(self, influence: np.ndarray, m: int) -> np.ndarray:
        """Eq. 4: exactly ``m`` indices (int64, sorted)."""

    def generalization(self, influence: np.ndarray, eps: float) -> np.ndarray:
        """Eq. 3: indices (int64, sorted) whose removal norm is <= eps."""


SOLVERS: Registry[type] = Registry("solver")


def removal_count(n: int, ratio: float) -> int:
    """m = round(ratio * n); ratio must lie in (0, 1)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must lie strictly between 0 and 1 (the fraction removed), got {ratio}")
    return int(round(ratio * n))


def select_removed(
    influence: np.ndarray,
    *,
    problem: Problem,
    solver: str,
    ratio: float | None = None,
    eps: float | None = None,
    options: dict[str, Any] | None = None,
) -> np.ndarray:
    """Solve Eq. 4 (``problem='cardinality'``, m = ratio * n) or Eq. 3 (``problem='generalization'``, eps).

    influence : ndarray of shape (n_samples, d)
    Returns the removed indices, int64 of shape (m,), sorted.
    """
    influence = np.asarray(influence, dtype=np.float64)
    if influence.ndim != 2:
        raise ValueError(f"influence must have shape (n_samples, d), got {influence.shape}")
    if not np.isfinite(influence).all():
        raise FloatingPointError("influence contains NaN or infinite values; rescore with a larger damping")
    instance = SOLVERS.get(solver)(**(options or {}))
    if problem == "cardinality":
        if ratio is None:
            raise ValueError("problem 'cardinality' (Eq. 4) needs ratio")
        removed = instance.cardinality(influence, removal_count(len(influence), ratio))
    elif problem == "generalization":
        if eps is None or not eps >= 0:
            raise ValueError(f"problem 'generalization' (Eq. 3) needs eps >= 0, got {eps}")
        removed = instance.generalization(influence, float(eps))
    else:
        raise ValueError(f"unknown problem {problem!r}; known: cardinality (Eq. 4), generalization (Eq. 3)")
    return np.sort(np.asarray(removed, dtype=np.int64))


def theorem_quantities(influence: np.ndarray, removed: np.ndarray) -> dict[str, float]:
    """The terms of the paper's Theorem 1 bound O(eps/n + m/n^2) for removing ``removed`` from n samples."""
    n, m = len(influence), len(removed)
    eps = removal_norm(influence, removed)
    return {"eps": eps, "eps_over_n": eps / n, "m_over_n2": m / n**2, "removed": float(m), "n": float(n)}
