"""The solver entry points: ``solve_selection`` (removed indices plus objective, bound, time, trace) and
``select_removed`` (indices only). They build the budgets (``budgets``, ``groups``), run a solver of
``SOLVERS`` and certify the answer with the relaxation bound (``solvers.bounds``).

Import order, bottom up: ``objective``, ``budgets``, ``products``, ``clock``, ``solver_registry`` <- ``solvers/*``
<- ``solve`` <- ``choose`` (``select_for_method``, which also runs the rules of ``rules/``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.groups import make_groups
from dataset_pruning.selection.solver_registry import build_solver
from dataset_pruning.selection.budgets import cell_codes, cell_quotas, class_caps, removal_count
from dataset_pruning.selection.objective import Problem, removal_norm
from dataset_pruning.selection.products import check_influence
from dataset_pruning.selection.solvers.bounds import relaxation_bound


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
    groups: int = 1  # budget cells the solver honoured (classes x groups)

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
        if self.groups > 1:
            figures["budget_cells"] = float(self.groups)
        return figures


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
    groups: str | np.ndarray | None = None,
    n_groups: int = 10,
    group_budget: Literal["proportional", "coverage"] = "proportional",
    group_scores: np.ndarray | None = None,
    group_features: np.ndarray | None = None,
    projection_dim: int | None = None,
    bound_iterations: int = 100,
    bound_tolerance: float | None = 0.005,
    options: dict[str, Any] | None = None,
) -> SelectionResult:
    """Solve Eq. 4 (m = ratio * n) or Eq. 3 (eps) under per-group budgets and report objective, relaxation bound
    and time.

    influence : ndarray of shape (n_samples, d); labels : ndarray of shape (n_samples,), needed for class balance.
    Budgets: ``class_balanced`` gives every class its share (Eq. 4: m_c = ratio * n_c; Eq. 3: each class keeps at
    least ``class_floor``). ``groups`` ('class', 'strata', 'clusters', or codes of shape (n,); ``groups.py``)
    splits the budget further, within each class when ``class_balanced``: Eq. 4 removes ``group_budget``
    ('proportional' or 'coverage') per group, Eq. 3 keeps ``class_floor`` of every group. Strata are taken on
    ``group_scores`` (default ||S_i||), clusters on ``group_features`` (default the unit rows of S).
    ``projection_dim``: solve on a Gaussian random projection of S (the objective is always measured on S).
    ``bound_iterations`` / ``bound_tolerance``: the relaxation bound's budget (``bounds.relaxation_bound``).
    """
    influence = check_influence(influence)
    n = len(influence)
    if class_balanced and labels is None:
        raise ValueError("class_balanced selection needs the class labels (the train_set's y)")
    options = dict(options or {})
    seed = options.get("seed", 0)
    classes = np.asarray(labels) if class_balanced else None
    inner = make_groups(
        groups, n_groups, n=n, labels=labels, vectors=influence, scores=group_scores, features=group_features,
        seed=seed,
    )
    instance = build_solver(solver, options)
    work, projection_error = influence, None
    if projection_dim is not None and projection_dim < influence.shape[1]:
        work = random_projection(influence, int(projection_dim), seed)
    plain = classes is None and inner is None  # one group: the solvers' plain path
    start = time.perf_counter()
    if problem == "cardinality":
        if ratio is None:
            raise ValueError("problem 'cardinality' (Eq. 4) needs ratio")
        if plain:
            codes, quota = None, removal_count(n, ratio)
        else:
            codes, quota = cell_quotas(n, ratio, labels=classes, groups=inner, budget=group_budget)
        removed = instance.cardinality(work, quota, codes)
    elif problem == "generalization":
        if eps is None or not eps >= 0:
            raise ValueError(f"problem 'generalization' (Eq. 3) needs eps >= 0, got {eps}")
        if plain:
            codes, caps = None, None
        else:
            codes = cell_codes(n, classes, inner)[0]
            caps = class_caps(codes, class_floor)
        removed = instance.generalization(work, float(eps), codes, caps)
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
        bound, note = relaxation_bound(influence, problem, groups=codes, m=quota, iterations=bound_iterations,
                                       tolerance=bound_tolerance)
    else:
        bound, note = relaxation_bound(
            influence, problem, groups=codes, eps=float(eps), caps=caps, iterations=bound_iterations
        )
    trace = getattr(instance, "trace", None)
    cells = 1 if codes is None else int(codes.max()) + 1
    return SelectionResult(
        removed, solver, problem, objective, bound, note, seconds, n, trace.points if trace else [],
        projection_error, cells,
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

    influence : ndarray of shape (n_samples, d); ``budget``: labels, class_balanced, class_floor, groups,
    n_groups, group_budget, projection_dim as in ``solve_selection``. Returns the removed indices, int64 of shape
    (m,), sorted.
    """
    result = solve_selection(
        influence, problem=problem, solver=solver, ratio=ratio, eps=eps, options=options, bound_iterations=0, **budget
    )
    return result.removed


__all__ = ["SelectionResult", "random_projection", "select_removed", "solve_selection"]
