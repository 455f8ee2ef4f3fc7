"""Influence scoring: S_i = (1/n) H^-1 grad L(z_i, theta) for every training sample (step 2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset_pruning.config import ErmTrainingParams, ScoringParams
from dataset_pruning.data import TensorData
from dataset_pruning.scoring import score_samples
from dataset_pruning.training import load_model


def score_influence(erm_model: dict[str, Any], train_set: TensorData, params: dict, erm_params: dict) -> np.ndarray:
    """influence_vectors : ndarray of shape (n_samples, d), float32. The Hessian's L2 term is the ERM weight decay."""
    p = ScoringParams.model_validate(params)
    options = {"weight_decay": ErmTrainingParams.model_validate(erm_params).training.weight_decay, **p.options}
    scores = score_samples(p.method, load_model(erm_model), train_set, **options)
    if not scores.is_vector:
        raise ValueError(f"influence_scoring.method {p.method!r} gives scalar scores, not influence vectors")
    return scores.values.numpy()
