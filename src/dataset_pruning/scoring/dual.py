"""DUAL (Cho et al., ICML 2025, "Lightweight Dataset Pruning without Full Training via Example Difficulty and
Prediction Uncertainty").

From the probability of the true class p_e(i) after each of the first T epochs only (clean view, as dynamic
uncertainty), per sliding window k of J epochs the uncertainty std_k (x 10) times the difficulty 1 - mean_k:

    DUAL_i = mean_k [ 10 std(p_k(i), ..., p_{k+J-1}(i)) * (1 - mean(p_k(i), ..., p_{k+J-1}(i))) ],  k = 0 .. T - J

The HIGHEST scores are kept (hard and still uncertain). At high ratios the reference draws the kept set with a
Beta-distribution weight over each sample's mean prediction instead (``rule: beta``, selection/rules/beta.py),
which reads the ``mean_probability`` column given here: mean_e p_e(i) over the same T epochs.
Reference: behaapyy/dual-pruning, exp_cifar/importance_evaluation.py (``dual``: T = 30 of 200 epochs, J = 10).
Difference: the reference's Beta weight takes the mean prediction over the whole trajectory; here over the T
scored epochs, so that nothing past the early epochs is needed.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.trace import require_trace


def dual_scores(true_probability: torch.Tensor, window: int) -> torch.Tensor:
    """true_probability : Tensor of shape (T, n) -> DUAL scores of shape (n,), float64."""
    epochs = true_probability.shape[0]
    if not 2 <= window <= epochs:
        raise ValueError(f"window must lie in [2, {epochs}] (the scored epochs), got {window}")
    windows = true_probability.double().unfold(0, window, 1)  # (T - J + 1, n, J)
    return (10.0 * windows.std(dim=2) * (1.0 - windows.mean(dim=2))).mean(0)


@scorer("dual", output="scalar", needs=("dynamics",), columns=("mean_probability",))
def dual(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    epochs: Annotated[int, Field(ge=2)] = 30,
    window: Annotated[int, Field(ge=2)] = 10,
) -> SampleScores:
    """scores : Tensor of shape (n_samples,); keep highest. ``epochs`` is T (at most the ERM's epochs: fewer are
    used when ERM ran fewer), ``window`` J (at most T). columns['mean_probability'] : (n_samples,)."""
    trace = require_trace(trace, "dynamics", "dual", "true_probability")
    epochs = min(epochs, trace.true_probability.shape[0])
    window = min(window, epochs)
    early = trace.true_probability[:epochs]
    values = dual_scores(early, window).float()
    return SampleScores(values, method="dual", keep="highest", info={"epochs": epochs, "window": window},
                        columns={"mean_probability": early.double().mean(0).float()})


__all__ = ["dual", "dual_scores"]
