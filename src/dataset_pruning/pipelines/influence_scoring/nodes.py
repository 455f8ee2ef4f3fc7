"""Influence scoring (step 2): the last-layer influence vectors S_i = (1/n) H^-1 grad L(z_i, theta), always
(eps is measured on them), and the configured scoring method's scores for comparison (``sample_scores``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset_pruning.config import ErmTrainingParams, ScoringParams
from dataset_pruning.data import TensorData
from dataset_pruning.scoring import TrainingTrace, score_samples, scorer_options
from dataset_pruning.training import load_model


def _common_options(method: str, p: ScoringParams, erm_params: dict) -> dict[str, Any]:
    """Options every scorer that takes them gets from the pipeline: device, seed (the ERM seed unless set), progress bars, and the ERM
    weight decay as the Hessian's L2 term."""
    erm = ErmTrainingParams.model_validate(erm_params).training
    common = {
        "device": p.device,
        "seed": erm.seed if p.seed is None else p.seed,
        "progress": True,
        "weight_decay": erm.weight_decay,
    }
    return {key: value for key, value in common.items() if key in scorer_options(method)}


def score_influence(erm_model: dict[str, Any], train_set: TensorData, params: dict, erm_params: dict) -> np.ndarray:
    """influence_vectors : ndarray of shape (n_samples, d), float32: last-layer S with ``influence`` options."""
    p = ScoringParams.model_validate(params)
    options = {**_common_options("last_layer_influence", p, erm_params), **p.influence}
    return score_samples("last_layer_influence", load_model(erm_model), train_set, **options).values.numpy()


def score_method(
    erm_model: dict[str, Any],
    training_trace: TrainingTrace,
    train_set: TensorData,
    params: dict,
    erm_params: dict,
) -> dict[str, Any]:
    """sample_scores : {method, keep, values, info}.

    values : ndarray of shape (n_samples,) for a scalar method (keep says which end is kept: remove the other with
    ``selection.rules.score_rule.remove_by_score``), of shape (n_samples, d) for a vector method, or None for
    last_layer_influence, whose vectors are ``influence_vectors`` (not stored twice).
    """
    p = ScoringParams.model_validate(params)
    if p.method == "last_layer_influence":
        return {"method": p.method, "keep": None, "values": None, "info": {"same_as": "influence_vectors"}}
    options = {**_common_options(p.method, p, erm_params), **p.options}
    scores = score_samples(p.method, load_model(erm_model), train_set, trace=training_trace, **options)
    return {"method": scores.method, "keep": scores.keep, "values": scores.values.numpy(), "info": scores.info}
