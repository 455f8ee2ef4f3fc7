"""The Eq. 3 / Eq. 4 objective in one place, budgets (class-balanced or not), the solver registry, and the entry
points ``select_removed`` (indices) and ``solve_selection`` (indices plus objective, bound, time, trace).

S is the (n, d) matrix of influence vectors; W in {0, 1}^n marks removed samples (W_i = 1: removed).
- Eq. 4, cardinality-guaranteed pruning: minimise ||W^T S||_2 subject to sum W = m.
- Eq. 3, generalization-guaranteed pruning: maximise sum W subject to ||W^T S||_2 <= eps.

Budgets are per group (class): Eq. 4 removes exactly ``quota[g]`` samples of group g (one group = plain Eq. 4);
Eq. 3 removes at most ``cap[g]`` of group g (a per-class floor of kept samples). Every solver honours both.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from dataset_pruning.registry import Registry
from dataset_pruning.runtime import numpy_rng

Problem = Literal["cardinality", "generalization"]


def removal_norm(influence: np.ndarray, removed: np.ndarray) -> float:
    """eps = ||sum_{i in removed} S_i||_2, accumulated in float64."""
    removed = np.asarray(removed, dtype=np.int64)
    if removed.size == 0:
        return 0.0
    return float(np.linalg.norm(np.asarray(influence[removed], dtype=np.float64).sum(axis=0)))


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
        lowest, highest = 0.5 / n, 1.0 - 0.5 / n
        raise ValueError(
            f"ratio {ratio} of n = {n} training samples removes m = round({ratio * n:.4g}) = {m}, {what}; "
            f"choose a ratio between {lowest:.3g} and {highest:.3g}"
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
    exact = ratio * sizes
    quota = np.floor(exact).astype(np.int64)
    short = removal_count(len(labels), ratio) - int(quota.sum())
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: max(short, 0)]] += 1
    return np.minimum(quota, sizes)


def apportion(total: int, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` removals over groups in proportion to their caps (G,), by largest remainder: int64 (G,)
    summing to ``total`` (<= caps.sum()), never above a cap. Eq. 3 solvers that bisect on the count use it."""
    share = total * caps / max(caps.sum(), 1)
    quota = np.floor(share).astype(np.int64)
    quota[np.argsort(-(share - quota), kind="stable")[: total - quota.sum()]] += 1
    return np.minimum(quota, caps)


def class_caps(labels: np.ndarray, floor: float) -> np.ndarray:
    """Class floor for Eq. 3: keep at least ceil(floor * n_c) of class c, so at most n_c - that may go."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"class_floor must lie in [0, 1] (the fraction of each class kept), got {floor}")
    codes, g = group_codes(len(labels), labels)
    sizes = np.bincount(codes, minlength=g)
    return sizes - np.ceil(floor * sizes - 1e-9).astype(np.int64)


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


def exact_matvec(influence: np.ndarray, vector: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """S @ v in float64, block of rows by block, of shape (n,): exact products for a certificate without a float64
    copy of a float32 S."""
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


# --------------------------------------------------------------------------------------------- results
@dataclass
class SelectionResult:
    """One solve: the removed indices and the figures reported beside them (logged to MLflow by the node)."""

    removed: np.ndarray
    solver: str
    problem: str
    objective: float  # eps = ||sum of removed S_i||_2 on the full S
    bound: float  # Eq. 4: lower bound on the objective; Eq. 3: upper bound on the removable count
    bound_note: str
    seconds: float
    n: int
    trace: list[tuple[float, float]] = field(default_factory=list)
    projection_error: float | None = None  # |objective on projected S - on S| / objective on S

    def metrics(self) -> dict[str, float]:
        """The Theorem 1 quantities and the solve's figures, all numbers (the solver's name is a parameter)."""
        m = len(self.removed)
        figures = {
            "objective": self.objective,
            "eps": self.objective,
            "eps_over_n": self.objective / self.n,
            "m_over_n2": m / self.n**2,
            "removed": float(m),
            "ratio": m / self.n,
            "bound": self.bound,
            "bound_is_trivial": float(self.bound_note != "informative"),
            "seconds": self.seconds,
        }
        if self.problem == "cardinality":
            figures["gap_to_bound"] = self.objective - self.bound
        else:
            figures["count_gap_to_bound"] = self.bound - m
        if self.projection_error is not None:
            figures["projection_error"] = self.projection_error
        return figures


def build_solver(name: str, options: dict[str, Any]):
    """SOLVERS[name](**options), with a clear message for an option the solver does not take."""
    import inspect

    cls = SOLVERS.get(name)
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"solver {name!r} does not take option(s) {unknown}; its options: {', '.join(accepted)}")
    return cls(**options)


def random_projection(influence: np.ndarray, dim: int, seed: int, chunk: int = 65536) -> np.ndarray:
    """S @ P with P Gaussian (d, dim) / sqrt(dim): norms of sums are kept within ~1/sqrt(dim) relative error."""
    projection = numpy_rng(seed).standard_normal((influence.shape[1], dim)) / math.sqrt(dim)
    projection = projection.astype(influence.dtype)
    return np.concatenate([influence[i : i + chunk] @ projection for i in range(0, len(influence), chunk)])


def solve_selection(
    influence: np.ndarray,
    *,
    problem: Problem,
    solver: str,
    ratio: float | None = None,
    eps: float | None = None,
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
    class_floor: float = 0.0,
    projection_dim: int | None = None,
    bound_iterations: int = 100,
    options: dict[str, Any] | None = None,
) -> SelectionResult:
    """Solve Eq. 4 (m = ratio * n, per class with ``class_balanced``) or Eq. 3 (eps, each class keeping at least
    ``class_floor`` of its samples with ``class_balanced``) and report objective, relaxation bound and time.

    influence : ndarray of shape (n_samples, d); labels : ndarray of shape (n_samples,), needed for class balance.
    ``projection_dim``: solve on a Gaussian random projection of S (the objective is always measured on S).
    """
    from dataset_pruning.selection.bounds import relaxation_bound  # bounds imports this module

    influence = check_influence(influence)
    n = len(influence)
    if class_balanced and labels is None:
        raise ValueError("class_balanced selection needs the class labels (the train_set's y)")
    groups = np.asarray(labels) if class_balanced else None
    options = dict(options or {})
    instance = build_solver(solver, options)
    work, projection_error = influence, None
    if projection_dim is not None and projection_dim < influence.shape[1]:
        work = random_projection(influence, int(projection_dim), options.get("seed", 0))
    start = time.perf_counter()
    if problem == "cardinality":
        if ratio is None:
            raise ValueError("problem 'cardinality' (Eq. 4) needs ratio")
        m = class_quotas(groups, ratio) if class_balanced else removal_count(n, ratio)
        removed = instance.cardinality(work, m, groups)
    elif problem == "generalization":
        if eps is None or not eps >= 0:
            raise ValueError(f"problem 'generalization' (Eq. 3) needs eps >= 0, got {eps}")
        caps = class_caps(groups, class_floor) if class_balanced else None
        removed = instance.generalization(work, float(eps), groups, caps)
    else:
        raise ValueError(f"unknown problem {problem!r}; known: cardinality (Eq. 4), generalization (Eq. 3)")
    seconds = time.perf_counter() - start
    removed = np.sort(np.asarray(removed, dtype=np.int64))
    objective = removal_norm(influence, removed)
    if work is not influence:
        on_projection = removal_norm(work, removed)
        projection_error = abs(on_projection - objective) / max(objective, 1e-300)
        if problem == "generalization" and objective > eps:
            # the projection let the norm slip over eps: drop the worst samples until it holds on S itself
            removed = _restore_feasibility(influence, removed, float(eps))
            objective = removal_norm(influence, removed)
    if problem == "cardinality":
        bound, note = relaxation_bound(influence, problem, groups=groups, m=m, iterations=bound_iterations)
    else:
        bound, note = relaxation_bound(
            influence, problem, groups=groups, eps=float(eps), caps=caps, iterations=bound_iterations
        )
    trace = getattr(instance, "trace", None)
    return SelectionResult(
        removed, solver, problem, objective, bound, note, seconds, n, trace.points if trace else [], projection_error
    )


def _restore_feasibility(influence: np.ndarray, removed: np.ndarray, eps: float) -> np.ndarray:
    """Greedily put back the removed sample that lowers ||sum S_i|| most until the norm is <= eps."""
    removed = list(removed)
    residual = np.asarray(influence[removed], dtype=np.float64).sum(axis=0)
    while removed and np.linalg.norm(residual) > eps:
        rows = np.asarray(influence[removed], dtype=np.float64)
        k = int(np.argmin(np.linalg.norm(residual[None] - rows, axis=1)))
        residual -= rows[k]
        removed.pop(k)
    return np.sort(np.asarray(removed, dtype=np.int64))


def select_removed(
    influence: np.ndarray,
    *,
    problem: Problem,
    solver: str,
    ratio: float | None = None,
    eps: float | None = None,
    options: dict[str, Any] | None = None,
    **budget: Any,
) -> np.ndarray:
    """Solve Eq. 4 (``problem='cardinality'``, m = ratio * n) or Eq. 3 (``problem='generalization'``, eps).

    influence : ndarray of shape (n_samples, d); ``budget``: labels, class_balanced, class_floor, projection_dim
    as in ``solve_selection``. Returns the removed indices, int64 of shape (m,), sorted.
    """
    result = solve_selection(
        influence, problem=problem, solver=solver, ratio=ratio, eps=eps, options=options, bound_iterations=0, **budget
    )
    return result.removed


def theorem_quantities(influence: np.ndarray, removed: np.ndarray) -> dict[str, float]:
    """The terms of the paper's Theorem 1 bound O(eps/n + m/n^2) for removing ``removed`` from n samples."""
    n, m = len(influence), len(removed)
    eps = removal_norm(influence, removed)
    return {"eps": eps, "eps_over_n": eps / n, "m_over_n2": m / n**2, "removed": float(m), "n": float(n)}
