"""Selection of the samples to remove. Two kinds of thing, one folder each:

- ``rules/``: rules that rank or stratify one scalar score per sample (``RULES``: score, ccs, ratio_aware, beta,
  moderate);
- ``solvers/``: solvers of the paper's Eq. 4 / Eq. 3 over the influence vectors (``SOLVERS``: hybrid, swap,
  greedy, relaxation, annealing, exact, bucketed, random), with the relaxation bounds.

Below them ``objective.py`` (the objective and its norms), ``budgets.py`` (removal counts, class and cell quotas,
one largest-remainder ``apportion``), ``solver_registry.py`` (``SOLVERS``, ``build_solver``, option checks),
``products.py`` (products with S), ``clock.py`` (time budgets, ``Trace``) and ``groups.py`` (classes, strata,
clusters); above them the entry points ``solve.py`` (``solve_selection``, ``select_removed``) and ``choose.py``
(``select_for_method``: rule or solver, what the pipeline node and the sweep call), and ``tuning.py`` (rule
hyper-parameters chosen on a validation split). docs/selection.md has the map.
"""

from dataset_pruning.selection import rules, solvers  # noqa: F401  (registration)
from dataset_pruning.selection.choose import select_for_method, vector_scores
from dataset_pruning.selection.groups import make_groups
from dataset_pruning.selection.solver_registry import SOLVERS
from dataset_pruning.selection.budgets import cell_quotas, class_caps, class_quotas, removal_count
from dataset_pruning.selection.objective import removal_norm, theorem_quantities
from dataset_pruning.selection.rules import (
    RULES,
    check_rule_options,
    remove_by_score,
    rule_needs,
    rule_options,
    select_by_rule,
)
from dataset_pruning.selection.solve import SelectionResult, select_removed, solve_selection
from dataset_pruning.selection.solvers.bounds import relaxation_bound
from dataset_pruning.selection.tuning import TuningResult, tune_rule, validation_split

__all__ = [
    "RULES",
    "SOLVERS",
    "SelectionResult",
    "TuningResult",
    "cell_quotas",
    "check_rule_options",
    "class_caps",
    "class_quotas",
    "make_groups",
    "relaxation_bound",
    "removal_count",
    "removal_norm",
    "remove_by_score",
    "rule_needs",
    "rule_options",
    "select_by_rule",
    "select_for_method",
    "select_removed",
    "solve_selection",
    "theorem_quantities",
    "tune_rule",
    "validation_split",
    "vector_scores",
]
