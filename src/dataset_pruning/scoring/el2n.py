"""EL2N (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021): the error L2 norm early in training.

    EL2N(x_i, y_i) = E_runs || softmax(f(x_i)) - onehot(y_i) ||_2

from ``runs`` fresh initialisations trained ``epochs`` epochs each (``early_training``). Hard or noisy samples
score high; the HIGHEST scores are kept. Cost: runs * epochs epochs of training plus a forward pass per run.
Reference: mansheej/data_diet, data_diet/scores.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.early_training import default_epochs, early_models, training_recipe
from dataset_pruning.training import TrainingConfig, predict_logits


def error_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(labels)||_2 per sample: logits (n, C), labels (n,) -> (n,)."""
    probabilities = torch.softmax(logits.double(), dim=1)
    return (probabilities - F.one_hot(labels, logits.shape[1]).double()).norm(dim=1)


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
) -> SampleScores:
    """scores : Tensor of shape (n_samples,), keep highest. ``epochs`` defaults to 10% of the recipe's."""
    config = training_recipe(recipe, trace)
    epochs = default_epochs(config) if epochs is None else int(epochs)
    total = torch.zeros(len(train), dtype=torch.float64)
    models = early_models(model, train, recipe=config, epochs=epochs, runs=runs, seed=seed, device=device)
    for run in tqdm(models, total=runs, desc="EL2N runs", disable=not progress, leave=False):
        total += error_norms(predict_logits(run, train.x, batch_size, device), train.y)
    return SampleScores((total / runs).float(), method="el2n", keep="highest", info={"runs": runs, "epochs": epochs})


__all__ = ["el2n", "error_norms"]
