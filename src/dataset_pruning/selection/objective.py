"""The Eq. 3 / Eq. 4 objective in one place, the budgets (per class, per group), the solver registry and the
parts the solvers share. The entry points live above it: ``solve.py`` (``solve_selection``, ``select_removed``)
and ``choose.py`` (``select_for_method``); nothing here imports them or the solvers.

S is the (n, d) matrix of influence vectors; W in {0, 1}^n marks removed samples (W_i = 1: removed).
- Eq. 4, cardinality-guaranteed pruning: minimise ||W^T S||_2 subject to sum W = m.
- Eq. 3, generalization-guaranteed pruning: maximise sum W subject to ||W^T S||_2 <= eps.

Budgets are per group (a class, a score stratum, a cluster, or a class x group cell; ``groups.py`` builds the
groups): Eq. 4 removes exactly ``quota[g]`` samples of group g (one group = plain Eq. 4); Eq. 3 removes at most
``cap[g]`` of group g (a floor of kept samples per group). Every solver honours both.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal, Protocol

import numpy as np

from dataset_pruning.registry import Registry

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


class Solver(Protocol):
    """A solver is built from its options (seed included) and answers both problems, per group.

    ``groups`` : int64 of shape (n,) with codes 0..G-1 (None: one group). ``quota`` : int64 (G,) removed per
    group (Eq. 4; an int when groups is None). ``caps`` : int64 (G,) most removable per group (Eq. 3).
    """

    def cardinality(self, influence: np.ndarray, m, groups: np.ndarray | None = None) -> np.ndarray:
        """Eq. 4: exactly ``m`` indices (``quota[g]`` from group g)."""

    def generalization(
        self, influence: np.ndarray, eps: float, groups: np.ndarray | None = None, caps: np.ndarray | None = None
    ) -> np.ndarray:
        """Eq. 3: indices whose removal norm is <= eps, at most ``caps[g]`` from group g."""


SOLVERS: Registry[type] = Registry("solver")


def removal_count(n: int, ratio: float) -> int:
    """m = round(ratio * n); ratio must lie in (0, 1) and m in [1, n - 1] (nothing removed, or nothing left to
    train on, is refused here rather than as a ZeroDivisionError in training)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must lie strictly between 0 and 1 (the fraction removed), got {ratio}")
    m = int(round(ratio * n))
    if not 0 < m < n:
        what = "no sample" if m == 0 else "every sample"
        raise ValueError(
            f"ratio {ratio} of n = {n} training samples removes m = round({ratio * n:.4g}) = {m}, {what}; "
            f"choose a ratio from {1 / n:.3g} to {(n - 1) / n:.6g} (1 to n - 1 samples removed)"
        )
    return m


# --------------------------------------------------------------------------------------------- budgets
def group_codes(n: int, groups: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Labels of shape (n,) -> codes 0..G-1 (int64) and G; None -> one group."""
    if groups is None:
        return np.zeros(n, dtype=np.int64), 1
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"class labels must have shape ({n},) to match the influence rows, got {groups.shape}")
    _, codes = np.unique(groups, return_inverse=True)
    return codes.astype(np.int64), int(codes.max()) + 1 if n else 1


def as_quota(n: int, m, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n,), quota (G,)) from an int m (one group) or a per-group array; checks feasibility."""
    codes, g = group_codes(n, groups)
    quota = np.atleast_1d(np.asarray(m, dtype=np.int64))
    if groups is None and quota.size == 1:
        quota = quota.reshape(1)
    sizes = np.bincount(codes, minlength=g)
    if quota.shape != (g,) or (quota < 0).any() or (quota > sizes).any():
        raise ValueError(f"removal quota {quota.tolist()} does not fit group sizes {sizes.tolist()}")
    return codes, quota


def as_caps(n: int, groups: np.ndarray | None, caps) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n,), caps (G,)); caps None -> every sample of a group may go."""
    codes, g = group_codes(n, groups)
    sizes = np.bincount(codes, minlength=g)
    caps = sizes.copy() if caps is None else np.minimum(np.asarray(caps, dtype=np.int64).reshape(g), sizes)
    if (caps < 0).any():
        raise ValueError(f"per-class caps must be >= 0, got {caps.tolist()}")
    return codes, caps


def class_quotas(labels: np.ndarray, ratio: float) -> np.ndarray:
    """Class-balanced Eq. 4 budget: m_c = ratio * n_c rounded by largest remainder so sum m_c = round(ratio n).

    labels : ndarray of shape (n_samples,). Returns int64 (n_classes,) in the order of ``np.unique(labels)``.
    """
    codes, g = group_codes(len(labels), labels)
    sizes = np.bincount(codes, minlength=g)
    return apportion(removal_count(len(labels), ratio), sizes, shares=ratio * sizes)


def apportion(total: int, sizes: np.ndarray, shares: np.ndarray | None = None) -> np.ndarray:
    """``total`` units split over groups of ``sizes`` (G,) by largest remainder, never above a size: int64 (G,)
    summing to min(total, sizes.sum()). ``shares`` (G,): each group's exact share (default: in proportion to the
    sizes, total * sizes / sizes.sum()); each group gets its share's floor, then one more unit goes to the largest
    remainders (ties in group order), and any unit left over to the groups with the most room. The one rounding
    of every budget: class quotas, cell quotas, Eq. 3's count over the class caps, a bucket's share of a class."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(min(max(total, 0), sizes.sum()))
    share = total * sizes / max(int(sizes.sum()), 1) if shares is None else np.asarray(shares, dtype=np.float64)
    quota = np.minimum(np.floor(share).astype(np.int64), sizes)
    for g in np.argsort(-(share - quota), kind="stable"):
        if quota.sum() >= total:
            break
        if quota[g] < sizes[g]:
            quota[g] += 1
    for g in np.argsort(-(sizes - quota), kind="stable"):  # rounding left units over: fill where room is left
        short = total - int(quota.sum())
        if short <= 0:
            break
        quota[g] += min(short, int(sizes[g] - quota[g]))
    return quota


def class_caps(labels: np.ndarray, floor: float) -> np.ndarray:
    """Class floor for Eq. 3: keep at least ceil(floor * n_c) of class c, so at most n_c - that may go."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"class_floor must lie in [0, 1] (the fraction of each class kept), got {floor}")
    codes, g = group_codes(len(labels), labels)
    sizes = np.bincount(codes, minlength=g)
    return sizes - np.ceil(floor * sizes - 1e-9).astype(np.int64)


def allocate_from_sparsest(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` kept samples over groups of ``sizes`` (G,) from the sparsest group up: each group in turn
    gets min(its size, remaining budget // remaining groups) (CCS's ``bin_allocate``, Zheng et al. ICLR 2023);
    a rounding remainder goes to the groups with room left, largest room first. int64 (G,) summing to
    min(budget, sizes.sum())."""
    sizes = np.asarray(sizes, dtype=np.int64)
    budget = int(min(max(budget, 0), sizes.sum()))
    order = np.argsort(sizes, kind="stable")
    allocation = np.zeros(len(sizes), dtype=np.int64)
    left = budget
    for position, g in enumerate(order):
        take = min(int(sizes[g]), left // (len(sizes) - position))
        allocation[g] = take
        left -= take
    for g in np.argsort(-(sizes - allocation), kind="stable"):  # only when the floors left a remainder
        if left == 0:
            break
        extra = min(int(sizes[g] - allocation[g]), left)
        allocation[g] += extra
        left -= extra
    return allocation


def cell_codes(n: int, labels: np.ndarray | None, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The budget cells: (class, group) pairs -> codes 0..G-1 of shape (n,) and the class code of each cell (G,).
    labels None: one class; groups None: each class is one cell."""
    outer, _ = group_codes(n, labels)
    inner, _ = group_codes(n, groups)
    pairs, codes = np.unique(np.stack([outer, inner], axis=1), axis=0, return_inverse=True)
    return codes.reshape(n).astype(np.int64), pairs[:, 0].astype(np.int64)


def cell_quotas(
    n: int,
    ratio: float,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    budget: Literal["proportional", "coverage"] = "proportional",
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 4's removal quota per cell: (codes (n,), quota (G,)), quota summing to m = round(ratio * n).

    With ``labels`` each class first gets its class-balanced quota (``class_quotas``), else the whole set has m.
    Within a class the cells (``groups``) share it: ``proportional`` removes ratio x each cell (largest
    remainder); ``coverage`` keeps the class's kept budget spread from the sparsest cell up
    (``allocate_from_sparsest``, CCS's allocation), so sparse strata or clusters stay whole.
    """
    if budget not in ("proportional", "coverage"):
        raise ValueError(f"group_budget must be 'proportional' or 'coverage', got {budget!r}")
    codes, class_of_cell = cell_codes(n, labels, groups)
    sizes = np.bincount(codes, minlength=len(class_of_cell))
    outer_quota = class_quotas(labels, ratio) if labels is not None else np.array([removal_count(n, ratio)])
    quota = np.zeros(len(sizes), dtype=np.int64)
    for c, removed in enumerate(outer_quota):
        cells = np.flatnonzero(class_of_cell == c)
        if budget == "proportional":
            quota[cells] = apportion(int(removed), sizes[cells])
        else:
            quota[cells] = sizes[cells] - allocate_from_sparsest(sizes[cells], int(sizes[cells].sum() - removed))
    return codes, quota


# ----------------------------------------------------------------------------------- shared solver parts
def check_influence(influence: np.ndarray) -> np.ndarray:
    """float32 stays float32 (half the memory traffic), anything else becomes float64; NaN is refused."""
    influence = np.asarray(influence)
    if influence.dtype != np.float32:
        influence = influence.astype(np.float64)
    if influence.ndim != 2:
        raise ValueError(f"influence must have shape (n_samples, d), got {influence.shape}")
    if not np.isfinite(influence).all():
        raise FloatingPointError("influence contains NaN or infinite values; rescore with a larger damping")
    return influence


def row_squares(influence: np.ndarray) -> np.ndarray:
    """||S_i||^2 of shape (n,), float64."""
    return np.einsum("ij,ij->i", influence, influence, dtype=np.float64)


def exact_matvec(influence: np.ndarray, vector: np.ndarray, chunk_rows: int = 8192) -> np.ndarray:
    """S @ v in float64, block of rows by block, of shape (n,): exact products for a certificate without a float64
    copy of a float32 S (a block of 8,192 rows is 85 MB at d = 1,290)."""
    vector = np.asarray(vector, dtype=np.float64)
    blocks = [np.asarray(influence[i : i + chunk_rows], dtype=np.float64) @ vector
              for i in range(0, len(influence), chunk_rows)]
    return np.concatenate(blocks) if blocks else np.zeros(0)


def matvec(influence: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """S @ v in S's dtype, returned as float64 of shape (n,)."""
    return (influence @ vector.astype(influence.dtype, copy=False)).astype(np.float64, copy=False)


def rmatvec(influence: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """S^T w in S's dtype, returned as float64 of shape (d,)."""
    return (np.asarray(weights).astype(influence.dtype, copy=False) @ influence).astype(np.float64, copy=False)


# ------------------------------------------------------------------------------------------- budgets in time
# Every solver stops on counts by default (moves, tabu steps, FISTA iterations, annealing steps, failed kicks,
# enumerated subsets), so the same inputs and seed give the same selection on any machine load. A wall-clock
# ``time_budget_s`` is an optional extra stop (None, the default: no time limit); these three helpers are the only
# way the solvers read the clock, and with no budget they never do.
def deadline_after(time_budget_s: float | None) -> float | None:
    """The ``time.perf_counter()`` value at which a wall-clock budget ends, or None (no time limit)."""
    if time_budget_s is None or math.isinf(time_budget_s):
        return None
    return time.perf_counter() + max(float(time_budget_s), 0.0)


def expired(deadline: float | None) -> bool:
    """Whether an optional deadline (``deadline_after``) has passed; False, without reading the clock, for None."""
    return deadline is not None and time.perf_counter() >= deadline


def time_left(deadline: float | None) -> float | None:
    """Seconds left to an optional deadline (>= 0), or None (no time limit) for None."""
    return None if deadline is None else max(deadline - time.perf_counter(), 0.0)


def share(time_budget_s: float | None, fraction: float) -> float | None:
    """``fraction`` of an optional time budget (None stays None)."""
    return None if time_budget_s is None else fraction * float(time_budget_s)


def check_time_budget(name: str, value: float | None) -> float | None:
    """An optional wall-clock option: None (no time limit) or a number of seconds >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value) >= 0.0:
        raise ValueError(f"{name} must be null (no time limit, the default) or a number of seconds >= 0, got {value!r}")
    return float(value)


def check_count(name: str, value: int | None, minimum: int = 0, optional: bool = False) -> int | None:
    """A step-budget option: an int >= ``minimum`` (None too when ``optional``: no limit)."""
    if value is None and optional:
        return None
    integral = isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral or int(value) < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}{' or null (no limit)' if optional else ''}, got {value!r}"
        )
    return int(value)


class Trace:
    """The anytime curve of a solve: (seconds since start, best objective so far) pairs."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.points: list[tuple[float, float]] = []

    def record(self, value: float) -> None:
        if not self.points or value < self.points[-1][1]:
            self.points.append((time.perf_counter() - self.start, float(value)))


def traced(solver: Any) -> Trace:
    """A fresh trace for the solve that starts now (``solver.trace``; ``solve_selection`` reads it).
    Eq. 4 traces hold the objective; Eq. 3 traces hold -count (lower is better in both)."""
    solver.trace = Trace()
    return solver.trace


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


# ----------------------------------------------------------------------------------------- registry use
def build_solver(name: str, options: dict[str, Any]):
    """SOLVERS[name](**options), with a clear message for an option the solver does not take."""
    import inspect

    cls = SOLVERS.get(name)
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"solver {name!r} does not take option(s) {unknown}; its options: {', '.join(accepted)}")
    return cls(**options)


def theorem_quantities(influence: np.ndarray, removed: np.ndarray) -> dict[str, float]:
    """The terms of the paper's Theorem 1 bound O(eps/n + m/n^2) for removing ``removed`` from n samples."""
    n, m = len(influence), len(removed)
    eps = removal_norm(influence, removed)
    return {"eps": eps, "eps_over_n": eps / n, "m_over_n2": m / n**2, "removed": float(m), "n": float(n)}
