"""GraNd (Paul et al., "Deep Learning on a Data Diet", NeurIPS 2021): the per-sample gradient norm early in training.

    GraNd(x_i, y_i) = E_runs || grad_theta l(x_i, y_i; theta) ||_2      (all parameters)

from ``runs`` fresh initialisations trained ``epochs`` epochs each (``epochs: 0`` scores at initialisation).
The HIGHEST scores are kept. Per-sample gradient norms come layer by layer from one backward pass per batch
(Linear and convolution layers), else from ``torch.func`` (memory O(batch_size * P)); only the norms are kept.
Cost: runs * (epochs of training + one per-sample-gradient pass).
Reference: mansheej/data_diet, data_diet/scores.py.
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.early_training import early_run_scorer
from dataset_pruning.scoring.gradients import FunctionalModel, batch_slices, layerwise, per_sample_gradient_norms


def gradient_norms(model: torch.nn.Module, train: TensorData, *, batch_size: int, device: str) -> torch.Tensor:
    """||grad l(z_i)||_2 over all parameters, shape (n,), float64 on the CPU: layer by layer for a model of Linear
    and convolution layers (``gradients.per_sample_gradient_norms``), else by ``vmap``."""
    fm = FunctionalModel(model, device=device)
    batches = batch_slices(len(train), batch_size)
    if layerwise(fm.module):
        return torch.cat([per_sample_gradient_norms(fm.module, *fm.to_device(train, index))[0].sqrt().cpu()
                          for index in batches])
    return torch.cat([fm.per_sample_gradients(fm.theta, *fm.to_device(train, index)).double().norm(dim=1).cpu()
                      for index in batches])


grand = early_run_scorer("grand", gradient_norms, batch_size=256, desc="GraNd runs")

__all__ = ["grand", "gradient_norms"]
