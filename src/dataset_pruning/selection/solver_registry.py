"""What a solver is (``Solver``: both problems, per group), the ``SOLVERS`` registry, ``build_solver`` (a solver from
its options) and the checks of the options the solvers share (step budgets, optional time budgets)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dataset_pruning.registry import Registry


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
