"""DUAL's Beta sampling (``rule: beta``; Cho et al., ICML 2025): draw the kept set, without replacement, with
probability proportional to

    w_i = Beta.pdf(mu_i; a, b) * score_i,   b = 15 (1 - anchor) (1 - ratio ** c_d),   a = 16 - b

mu_i: the sample's mean prediction of its true class (the ``mean_probability`` column of the ``dual`` scorer);
anchor: the mean mu of the 10 highest-scoring samples of the cell. As the ratio grows, b shrinks and the weight
moves toward easy samples (mu near 1): hard samples while the kept set is large, easy and typical ones when it is
small. Reference: behaapyy/dual-pruning, exp_cifar/data_subset.py (``beta_sampling``, ``c_d`` = 4 in its README).
Differences: per budget cell (the whole set unless class-balanced or grouped), mu clipped to [1e-6, 1 - 1e-6]
and b to >= 1e-3 (the density is finite at the ends), and a weight floor of 1e-12 x the largest weight, so that a
cell with fewer positive weights than its kept count is still filled (by near-uniform draws among the zeros).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field

from dataset_pruning.selection.rules.base import RuleContext, rule

ANCHORS = 10  # the reference's anchor: the mean prediction of the 10 highest scores


def beta_pdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """The Beta(a, b) density at x in (0, 1), shape of x: x^(a-1) (1-x)^(b-1) / B(a, b), in logs (scipy.stats would
    cost 0.65 s of import at every run's parameter check, which runs this rule once)."""
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return np.exp((a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_norm)


@rule("beta", needs=("mean_probability",))
def beta_sampling(
    scores: np.ndarray, count: int, context: RuleContext, *, c_d: Annotated[float, Field(gt=0)] = 4.0
) -> np.ndarray:
    """``count`` positions drawn with weight Beta.pdf(mean_probability; a, b) x score (scores >= 0, high = kept)."""
    if (scores < 0).any():
        raise ValueError("rule 'beta' weights samples by their score, which must be >= 0 (DUAL's is)")
    mu = np.clip(context.columns["mean_probability"], 1e-6, 1.0 - 1e-6)
    top = np.argsort(-scores, kind="stable")[:ANCHORS]
    b = max(15.0 * (1.0 - float(mu[top].mean())) * (1.0 - context.ratio**c_d), 1e-3)
    weights = beta_pdf(mu, 16.0 - b, b) * scores
    weights = np.maximum(weights, 1e-12 * max(float(weights.max()), 1e-300))
    kept = context.rng.choice(len(scores), size=count, replace=False, p=weights / weights.sum())
    return np.sort(kept)


__all__ = ["beta_sampling"]
