"""What a solver is (``Solver``, the base that owns seed, time budget, trace and per-group budgets), the ``SOLVERS`` registry, ``build_solver`` (a solver from
its options) and the checks of the options the solvers share (step budgets, optional time budgets)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset_pruning.registry import Registry
from dataset_pruning.selection.budgets import as_caps, as_quota
from dataset_pruning.selection.clock import Trace


class Solver:
    """The base of every solver: it owns the seed, the optional wall-clock budget (``time_budget_s``: None, the
    default, never reads the clock; step budgets are each solver's own options), the trace of the solve that ran
    last (``trace``, read by ``solve_selection``) and the budgets per group.

    ``cardinality`` (Eq. 4: exactly ``m`` indices, ``m[g]`` from group g) and ``generalization`` (Eq. 3: the most
    indices whose removal norm is <= eps, at most ``caps[g]`` from group g) turn ``groups`` (int64 (n,), codes
    0..G-1; None: one group) into class codes with a quota or caps (int64 (G,)), start a fresh trace and call the
    solver's ``remove_count(influence, codes, quota)`` / ``remove_within(influence, eps, codes, caps)``, which
    return the removed indices.
    """

    def __init__(self, seed: int = 0, time_budget_s: float | None = None) -> None:
        self.seed = seed
        name = SOLVERS.name_of(type(self)) or type(self).__name__  # as the parameters call it: hybrid, swap, ...
        self.time_budget_s = check_time_budget(f"{name}'s time_budget_s", time_budget_s)
        self.trace: Trace | None = None

    def cardinality(self, influence: np.ndarray, m, groups: np.ndarray | None = None) -> np.ndarray:
        codes, quota = as_quota(len(influence), m, groups)
        self.trace = Trace()
        return self.remove_count(influence, codes, quota)

    def generalization(
        self, influence: np.ndarray, eps: float, groups: np.ndarray | None = None, caps: np.ndarray | None = None
    ) -> np.ndarray:
        codes, caps = as_caps(len(influence), groups, caps)
        self.trace = Trace()
        return self.remove_within(influence, eps, codes, caps)

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        raise NotImplementedError


SOLVERS: Registry[type] = Registry("solver")


def build_solver(name: str, options: dict[str, Any]):
    """SOLVERS[name](**options), the options ``SOLVERS.check``ed first (an unknown one gets the closest match)."""
    return SOLVERS.get(name)(**SOLVERS.check(name, options))


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
