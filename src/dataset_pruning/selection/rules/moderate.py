"""Moderate-difficulty selection (``rule: moderate``; Xia et al., ICLR 2023, "Moderate coreset"): keep the
samples whose score is closest to the median of their cell (a class when ``class_balanced``).

Xia et al. score a sample by its feature distance to the class centre and keep those nearest the median
distance; here any scalar score takes that place (e.g. EL2N, AUM, ||S_i||). ``quantile`` generalises the centre:
0.5 is the median (the paper), 1 the hardest end (the score rule for a difficulty score), 0 the easiest; the
quantile is taken of the difficulty (higher = harder), so it means the same for every score direction. Ties by
index. No randomness.
"""

from __future__ import annotations

import numpy as np

from dataset_pruning.selection.rules.base import RuleContext, rule
from dataset_pruning.selection.rules.ccs import check_fraction


@rule("moderate")
def moderate(scores: np.ndarray, count: int, context: RuleContext, *, quantile: float = 0.5) -> np.ndarray:
    """``count`` positions nearest the ``quantile`` of the cell's difficulty."""
    quantile = check_fraction("quantile", quantile, upper_open=False)
    difficulty = context.difficulty(scores)
    centre = float(np.quantile(difficulty, quantile))
    order = np.argsort(np.abs(difficulty - centre), kind="stable")
    return np.sort(order[:count])


__all__ = ["moderate"]
