"""TDDS (Zhang et al., CVPR 2024, "Spanning Training Progress: Temporal Dual-Depth Scoring").

From the training-pass softmax p_t of the first T epochs (labels unused):

    kd_t(i) = sum_c | p_{t+1,c} (log p_{t+1,c} - log p_{t,c}) |              (t = 0 .. T-2)
    for each window k of W consecutive epochs: dev_k(i) = || kd(i) - mean_window kd(i) ||_2 over its W - 1 terms
    TDDS_i = sum_k dev_k(i) * decay * (1 - decay)^(T - W - k)                 (k = 0 .. T - W; later windows heavier)

Samples whose predictions change irregularly score high; the HIGHEST scores are kept. Cost: none beyond ERM with
``erm_training.trace.dynamics: true`` (it stores the first ``probability_epochs`` epochs of softmax outputs).
Reference: zhangxin-xd/Dataset-Pruning-TDDS, importance_evaluation.py (log terms with +1e-8 as there).
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.trace import require_trace


def tdds_scores(probabilities: torch.Tensor, *, window: int, decay: float) -> torch.Tensor:
    """probabilities : Tensor of shape (T, n, C) (softmax per epoch) -> scores of shape (n,), float64."""
    p = probabilities.double()
    epochs = p.shape[0]
    if not 2 <= window <= epochs:
        raise ValueError(f"window must lie in [2, {epochs}] (the recorded probability epochs), got {window}")
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must lie in (0, 1), got {decay}")
    log_p = torch.log(p + 1e-8)
    kd = (p[1:] * (log_p[1:] - log_p[:-1])).abs().sum(2)  # (T - 1, n)
    total = torch.zeros(p.shape[1], dtype=torch.float64)
    for k in range(epochs - window + 1):
        terms = kd[k : k + window - 1]  # the W - 1 transitions inside window k
        deviation = (terms - terms.mean(0)).norm(dim=0)
        total += deviation * decay * (1.0 - decay) ** (epochs - window - k)
    return total


@scorer("tdds", output="scalar", needs=("dynamics",))
def tdds(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    epochs: int | None = None,
    window: int = 10,
    decay: float = 0.9,
) -> SampleScores:
    """scores : Tensor of shape (n_samples,); keep highest. ``epochs`` is T (default: all recorded, <= 30)."""
    trace = require_trace(trace, "dynamics", "tdds", "probabilities")
    recorded = trace.probabilities.shape[0]
    epochs = recorded if epochs is None else int(epochs)
    if not 2 <= epochs <= recorded:
        raise ValueError(
            f"tdds epochs must lie in [2, {recorded}] (softmax outputs recorded for {recorded} epochs; raise "
            "erm_training.trace.probability_epochs for more)"
        )
    window = min(window, epochs)
    values = tdds_scores(trace.probabilities[:epochs], window=window, decay=decay).float()
    return SampleScores(values, method="tdds", keep="highest", info={"epochs": epochs, "window": window, "decay": decay})


__all__ = ["tdds", "tdds_scores"]
