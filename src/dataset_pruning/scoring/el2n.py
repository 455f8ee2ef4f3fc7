"""EL2N (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021): the error L2 norm early in training.

    EL2N(x_i, y_i) = E_runs || softmax(f(x_i)) - onehot(y_i) ||_2

from ``runs`` fresh initialisations trained ``epochs`` epochs each (``early_training``). Hard or noisy samples
score high; the HIGHEST scores are kept. Cost: runs * epochs epochs of training plus a forward pass per run.
Reference: mansheej/data_diet, data_diet/scores.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.early_training import mean_over_early_runs
from dataset_pruning.training import TrainingConfig, predict_logits


def error_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(labels)||_2 per sample: logits (n, C), labels (n,) -> (n,)."""
    probabilities = torch.softmax(logits.double(), dim=1)
    return (probabilities - F.one_hot(labels, logits.shape[1]).double()).norm(dim=1)


def run_error_norms(run: torch.nn.Module, train: TensorData, *, batch_size: int, device: str) -> torch.Tensor:
    """EL2N of one early run: ``error_norms`` of its logits on ``train``, shape (n,), float64."""
    return error_norms(predict_logits(run, train.x, batch_size, device), train.y)


@scorer("el2n", output="scalar")
def el2n(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    runs: int = 10,
    epochs: int | None = None,
    recipe: TrainingConfig | dict | None = None,
    batch_size: int = 1024,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    store: str | None = None,
) -> SampleScores:
    """scores : Tensor of shape (n_samples,), keep highest. ``epochs`` defaults to 10% of the recipe's.
    ``store``: a folder that keeps the short runs' weights (``early_training.early_models``; shared with GraNd)."""
    scores, info = mean_over_early_runs(
        lambda run: run_error_norms(run, train, batch_size=batch_size, device=device),
        model, train, trace=trace, recipe=recipe, epochs=epochs, runs=runs, seed=seed, device=device,
        progress=progress, desc="EL2N runs", store=store,
    )
    return SampleScores(scores.float(), method="el2n", keep="highest", info=info)


__all__ = ["el2n", "error_norms", "run_error_norms"]
