"""Ratio-aware selection (``rule: ratio_aware``), after Sorscher et al. (NeurIPS 2022, "Beyond neural scaling
laws"): with plentiful data keep the hard samples, with scarce data keep the easy ones.

The kept fraction is 1 - ratio. At or above ``threshold`` the rule keeps the ``count`` hardest samples of each
cell (the end ``hard``; for a difficulty score that is the score rule's answer), below it the ``count`` easiest.
Ties by index. The threshold is a hyper-parameter: choose it on a validation split (``selection.tuning``), never
on the test set; the default 0.5 is a prior, not a measurement.
"""

from __future__ import annotations

import numpy as np

from dataset_pruning.selection.rules.base import RuleContext, rule
from dataset_pruning.selection.rules.ccs import check_fraction


@rule("ratio_aware")
def ratio_aware(scores: np.ndarray, count: int, context: RuleContext, *, threshold: float = 0.5) -> np.ndarray:
    """``count`` positions: the hardest when 1 - ratio >= ``threshold``, else the easiest."""
    threshold = check_fraction("threshold", threshold, upper_open=False)
    difficulty = context.difficulty(scores)
    keep_hard = 1.0 - context.ratio >= threshold
    order = np.argsort(-difficulty if keep_hard else difficulty, kind="stable")  # kept first
    return np.sort(order[:count])


__all__ = ["ratio_aware"]
