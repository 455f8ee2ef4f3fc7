"""Influence-score, the baseline of the Dataset Pruning paper (Koh & Liang 2017 influence, per sample).

    score_i = || S_i ||_2,    S_i = (1/n) H^-1 grad l(z_i)  (last layer, Eq. 2)

Each sample is judged alone: the group effect (two large S_i that cancel) that Eq. 3 / Eq. 4 exploit is ignored.
The paper's baseline selects the samples of high influence norm: the HIGHEST scores are kept. Cost: that of
``last_layer_influence`` (same options), without holding S: each batch of its rows becomes norms.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from dataset_pruning.scoring.last_layer import last_layer_scorer


def row_norms(rows: torch.Tensor) -> torch.Tensor:
    """||S_i||_2 of float32 rows of S (b, d), summed in float64: shape (b,), float32."""
    return rows.double().norm(dim=1).float()


def norms_of_rows(m: int, d: int, batches: Iterator[tuple[int, torch.Tensor]]) -> torch.Tensor:
    """||S_i||_2 of the m rows, shape (m,), float32: S is never held whole, each batch of rows becomes its norms."""
    norms = torch.empty(m)
    for i, block in batches:
        norms[i : i + len(block)] = row_norms(block)
    return norms


influence_norm = last_layer_scorer(
    "influence_norm", output="scalar", keep="highest", rows_of=norms_of_rows,
    summary="scores : Tensor of shape (n_samples,), ||S_i||_2 of the last-layer influence; keep highest. The options "
            "are those of ``last_layer_influence``.",
)


__all__ = ["influence_norm", "norms_of_rows", "row_norms"]
