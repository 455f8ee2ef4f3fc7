"""Selection of the samples to remove: the Eq. 3 / Eq. 4 objective, solvers by name, one entry point."""

from dataset_pruning.selection import annealing, greedy, random_selection  # noqa: F401  (registration)
from dataset_pruning.selection.objective import (
    SOLVERS,
    removal_count,
    removal_norm,
    select_removed,
    theorem_quantities,
)

__all__ = ["SOLVERS", "removal_count", "removal_norm", "select_removed", "theorem_quantities"]
