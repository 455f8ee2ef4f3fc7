"""Dynamic uncertainty (He et al., CVPR 2024, "Large-scale Dataset Pruning with Dynamic Uncertainty").

From the probability of the true class p_e(i) at the end of every epoch e (clean view: eval mode, no
augmentation), the uncertainty of a window of J epochs is the standard deviation of p over the window; the score
is its mean over all sliding windows:

    DU_i = mean_k std(p_k(i), ..., p_{k+J-1}(i)),   k = 0 .. E - J

Samples whose prediction keeps moving score high; the HIGHEST scores are kept. Cost: one forward pass over the
training set per epoch, recorded with ``erm_training.trace.dynamics: true``. Reference:
BAAI-DCAI/Dataset-Pruning, ImageNet/get_coreset.py (which skips the last window; every full window is used here).
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.trace import require_trace


def windowed_uncertainty(true_probability: torch.Tensor, window: int) -> torch.Tensor:
    """true_probability : Tensor of shape (E, n) -> mean over windows of the (unbiased) std, shape (n,)."""
    epochs = true_probability.shape[0]
    if not 2 <= window <= epochs:
        raise ValueError(f"window must lie in [2, {epochs}] (the recorded epochs), got {window}")
    windows = true_probability.double().unfold(0, window, 1)  # (E - J + 1, n, J)
    return windows.std(dim=2).mean(0)


@scorer("dynamic_uncertainty", output="scalar", needs=("dynamics",))
def dynamic_uncertainty(
    model: torch.nn.Module, train: TensorData, *, trace=None, window: int = 10
) -> SampleScores:
    """scores : Tensor of shape (n_samples,); keep highest. ``window`` is J (10 in the reference)."""
    trace = require_trace(trace, "dynamics", "dynamic_uncertainty", "true_probability")
    window = min(window, trace.true_probability.shape[0])
    values = windowed_uncertainty(trace.true_probability, window).float()
    return SampleScores(values, method="dynamic_uncertainty", keep="highest", info={"window": window})


__all__ = ["dynamic_uncertainty", "windowed_uncertainty"]
