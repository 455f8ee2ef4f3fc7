"""Rules that rank or stratify one scalar score per sample into the kept set (``RULES``; ``base.py`` gives the
interface). A new rule is one module here and one import line below."""

from dataset_pruning.selection.rules import beta, ccs, moderate, ratio_aware, score_rule  # noqa: F401  (registration)
from dataset_pruning.selection.rules.base import (
    RULES,
    RuleContext,
    check_rule_options,
    rule,
    rule_needs,
    rule_options,
    select_by_rule,
)
from dataset_pruning.selection.rules.score_rule import remove_by_score

__all__ = [
    "RULES",
    "RuleContext",
    "check_rule_options",
    "remove_by_score",
    "rule",
    "rule_needs",
    "rule_options",
    "select_by_rule",
]
