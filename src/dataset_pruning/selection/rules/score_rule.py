"""Score-rule selection (``rule: score``, the default): keep the end of the score that the scorer keeps.

Every scalar scorer says which end it keeps (``SampleScores.keep``: ``highest`` or ``lowest``); the rule removes
the m = round(ratio * n) samples at the other end. Ties are broken by sample index (stable), so the result is
deterministic. ``class_balanced`` removes m_c from every class c instead, m_c = ratio * n_c rounded by largest
remainder so that the m_c sum to m (MoSo's and Data Diet's equal budget per class; ``budgets.class_quotas``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dataset_pruning.selection.rules.base import RuleContext, rule, select_by_rule


@rule("score")
def keep_scored_end(scores: np.ndarray, count: int, context: RuleContext) -> np.ndarray:
    """The ``count`` positions at the kept end (ties: the lower index is kept last, i.e. removed first)."""
    order = np.argsort(scores if context.keep == "highest" else -scores, kind="stable")  # removal order
    return order[len(scores) - count :]


def remove_by_score(
    scores: np.ndarray,
    keep: Literal["highest", "lowest"],
    ratio: float,
    *,
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
) -> np.ndarray:
    """Indices to remove, int64 of shape (m,), sorted: the round(ratio * n) samples at the end not kept.

    scores : ndarray of shape (n_samples,)
    labels : ndarray of shape (n_samples,), needed when ``class_balanced``
    """
    return select_by_rule(scores, keep, ratio, rule="score", labels=labels, class_balanced=class_balanced)


__all__ = ["keep_scored_end", "remove_by_score"]
