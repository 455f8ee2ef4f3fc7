"""Selection of the samples to remove: the Eq. 3 / Eq. 4 objective, solvers by name, one entry point."""

from dataset_pruning.selection import (  # noqa: F401  (registration)
    annealing,
    distributed,
    exact,
    greedy,
    hybrid,
    random_selection,
    relaxation,
    swap,
)
from dataset_pruning.selection.bounds import relaxation_bound
from dataset_pruning.selection.objective import (
    SOLVERS,
    SelectionResult,
    class_caps,
    class_quotas,
    removal_count,
    removal_norm,
    select_removed,
    solve_selection,
    theorem_quantities,
)

__all__ = [
    "SOLVERS",
    "SelectionResult",
    "class_caps",
    "class_quotas",
    "relaxation_bound",
    "removal_count",
    "removal_norm",
    "select_removed",
    "solve_selection",
    "theorem_quantities",
]
