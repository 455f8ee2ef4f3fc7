"""Solvers of Eq. 4 / Eq. 3 over the influence vectors, one module each behind ``SOLVERS`` (``solver_registry.py``),
and the relaxation bounds (``bounds.py``) and the core route (``core.py``) they share. A new solver is one module
here and one import line below."""

from dataset_pruning.selection.solvers import (  # noqa: F401  (registration)
    annealing,
    distributed,
    exact,
    greedy,
    hybrid,
    random_selection,
    relaxation,
    swap,
)
from dataset_pruning.selection.solvers.bounds import relaxation_bound

__all__ = ["relaxation_bound"]
