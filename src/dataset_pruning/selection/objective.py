"""The Eq. 3 / Eq. 4 objective in one place: the removed rows' sum and its norm, along an order, and the terms of
Theorem 1. The budgets (``budgets.py``), the products with S (``products.py``), the clocks and traces (``clock.py``)
and the solver registry (``solver_registry.py``) sit beside it; the entry points live above them: ``solve.py``
(``solve_selection``, ``select_removed``) and ``choose.py`` (``select_for_method``).

S is the (n, d) matrix of influence vectors; W in {0, 1}^n marks removed samples (W_i = 1: removed).
- Eq. 4, cardinality-guaranteed pruning: minimise ||W^T S||_2 subject to sum W = m.
- Eq. 3, generalization-guaranteed pruning: maximise sum W subject to ||W^T S||_2 <= eps.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# importable from here as before (config.py, reporting.py, benchmarks/core_route.py)
from dataset_pruning.selection.budgets import as_quota, removal_count  # noqa: F401
from dataset_pruning.selection.products import matvec, row_squares  # noqa: F401
from dataset_pruning.selection.solver_registry import build_solver  # noqa: F401

Problem = Literal["cardinality", "generalization"]


def removed_sum(influence: np.ndarray, rows: np.ndarray, chunk_rows: int = 8192) -> np.ndarray:
    """sum of S_i over ``rows`` (indices or a bool mask (n,)), shape (d,), accumulated in float64, gathered
    ``chunk_rows`` rows at a time: half of the real Fashion-MNIST S gathered at once is a 155 MB copy."""
    rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=np.int64)
    total = np.zeros(influence.shape[1])
    for i in range(0, rows.size, chunk_rows):
        total += influence[rows[i : i + chunk_rows]].sum(axis=0, dtype=np.float64)
    return total


def removal_norm(influence: np.ndarray, removed: np.ndarray) -> float:
    """eps = ||sum_{i in removed} S_i||_2 (``removed``: indices or a bool mask), accumulated in float64."""
    return float(np.linalg.norm(removed_sum(influence, removed)))


def longest_feasible_prefix(influence: np.ndarray, order: np.ndarray, eps: float, codes=None, caps=None):
    """Eq. 3 from an order: walk it, skip samples whose class is full, and keep the longest prefix within eps."""
    if codes is not None and caps is not None:
        taken = np.zeros(len(caps), dtype=np.int64)
        allowed = np.empty(len(order), dtype=bool)
        for k, i in enumerate(order):  # partition matroid: a class stops once its cap is reached
            g = codes[i]
            allowed[k] = taken[g] < caps[g]
            taken[g] += allowed[k]
        order = order[allowed]
    if len(order) == 0:
        return order.astype(np.int64)
    norms = np.linalg.norm(np.cumsum(np.asarray(influence[order], dtype=np.float64), axis=0), axis=1)
    feasible = np.flatnonzero(norms <= eps)
    return order[: feasible[-1] + 1] if feasible.size else order[:0]


def theorem_quantities(influence: np.ndarray, removed: np.ndarray) -> dict[str, float]:
    """The terms of the paper's Theorem 1 bound O(eps/n + m/n^2) for removing ``removed`` from n samples."""
    n, m = len(influence), len(removed)
    eps = removal_norm(influence, removed)
    return {"eps": eps, "eps_over_n": eps / n, "m_over_n2": m / n**2, "removed": float(m), "n": float(n)}
