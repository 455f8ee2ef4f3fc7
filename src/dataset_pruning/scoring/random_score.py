"""Random pruning, the baseline every method must beat: i.i.d. uniform scores from ``seed``.

Keeping the HIGHEST (or any fixed end) of uniform scores keeps a uniformly random subset of the requested size.
Cost: none. The model and data only fix n.
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import torch_generator
from dataset_pruning.scoring.base import SampleScores, scorer


@scorer("random", output="scalar")
def random_scores(model: torch.nn.Module, train: TensorData, *, seed: int = 0) -> SampleScores:
    """scores : Tensor of shape (n_samples,), uniform in [0, 1); keep highest."""
    values = torch.rand(len(train), generator=torch_generator(seed))
    return SampleScores(values, method="random", keep="highest", info={"seed": seed})


__all__ = ["random_scores"]
