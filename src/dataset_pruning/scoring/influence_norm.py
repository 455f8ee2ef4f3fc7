"""Influence-score, the baseline of the Dataset Pruning paper (Koh & Liang 2017 influence, per sample).

    score_i = || S_i ||_2,    S_i = (1/n) H^-1 grad l(z_i)  (last layer, Eq. 2)

Each sample is judged alone: the group effect (two large S_i that cancel) that Eq. 3 / Eq. 4 exploit is ignored.
The paper's baseline selects the samples of high influence norm: the HIGHEST scores are kept. Cost: that of
``last_layer_influence`` (same options), without holding S: each batch of its rows becomes norms.
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.influence import influence_batches


@scorer("influence_norm", output="scalar")
def influence_norm(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    hessian: str = "exact",
    weight_decay: float = 5e-4,
    damping: float = 0.001,
    lissa: dict | None = None,
    batch_size: int = 1024,
    max_exact_dim: int = 20000,
    indices=None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> SampleScores:
    """scores : Tensor of shape (n_samples,), ||S_i||_2 of the last-layer influence; keep highest.

    The options are those of ``last_layer_influence`` (``indices``: only these samples, full-data Hessian).
    """
    m, _, batches, info = influence_batches(
        model, train, hessian=hessian, weight_decay=weight_decay, damping=damping, lissa=lissa,
        batch_size=batch_size, max_exact_dim=max_exact_dim, indices=indices, device=device, seed=seed,
        progress=progress,
    )
    norms = torch.empty(m)
    for i, block in batches:  # S is never held whole: each batch of rows becomes its norms
        norms[i : i + len(block)] = row_norms(block)
    return SampleScores(norms, method="influence_norm", keep="highest", info=info)


def row_norms(rows: torch.Tensor) -> torch.Tensor:
    """||S_i||_2 of float32 rows of S (b, d), summed in float64: shape (b,), float32."""
    return rows.double().norm(dim=1).float()


__all__ = ["influence_norm", "row_norms"]
