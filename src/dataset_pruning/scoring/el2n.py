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
from dataset_pruning.scoring.early_training import early_run_scorer
from dataset_pruning.training import predict_logits


def error_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(labels)||_2 per sample: logits (n, C), labels (n,) -> (n,)."""
    probabilities = torch.softmax(logits.double(), dim=1)
    return (probabilities - F.one_hot(labels, logits.shape[1]).double()).norm(dim=1)


def run_error_norms(run: torch.nn.Module, train: TensorData, *, batch_size: int, device: str) -> torch.Tensor:
    """EL2N of one early run: ``error_norms`` of its logits on ``train``, shape (n,), float64."""
    return error_norms(predict_logits(run, train.x, batch_size, device), train.y)


el2n = early_run_scorer("el2n", run_error_norms, batch_size=1024, desc="EL2N runs")


__all__ = ["el2n", "error_norms", "run_error_norms"]
