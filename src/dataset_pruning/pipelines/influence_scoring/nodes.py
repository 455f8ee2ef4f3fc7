"""Influence scoring (step 2): the last-layer influence vectors S_i = (1/n) H^-1 grad L(z_i, theta), always
(eps is measured on them), and the configured scoring method's scores for comparison (``sample_scores``),
optionally computed on a fraction of the samples and extrapolated to the rest (``extrapolation``), with the
scorer's diagnostics as MLflow metrics (``scoring_metrics``)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from dataset_pruning import steps
from dataset_pruning.config import ErmTrainingParams, ScoringParams, block
from dataset_pruning.data import TensorData
from dataset_pruning.pipelines import tracked
from dataset_pruning.scoring import TrainingTrace, score_samples
from dataset_pruning.scoring.extrapolation import check_extrapolation, extrapolate_scores
from dataset_pruning.scoring.last_layer import write_influence
from dataset_pruning.tensor_files import scratch_npy
from dataset_pruning.runtime import dask_client
from dataset_pruning.scoring.influence import effective_damping, solved_system
from dataset_pruning.scoring.sharded import SHARDED_METHODS, sharded_last_layer_influence, sharded_scores
from dataset_pruning.training import load_model

logger = logging.getLogger(__name__)


def _options(method: str, own: dict[str, Any], p: ScoringParams, erm: ErmTrainingParams) -> dict[str, Any]:
    """``own`` over what the run gives the scorer (``steps.run_options``): influence_scoring's device, its seed
    (the ERM seed unless set), progress bars, and the ERM weight decay as the Hessian's L2 term."""
    return steps.run_options(method, own, erm.training, device=p.device, seed=p.seed)


def score_influence(erm_model: dict[str, Any], train_set: TensorData, params: dict, erm_params: dict) -> np.ndarray:
    """influence_vectors : ndarray of shape (n_samples, d), float32: last-layer S with ``influence`` options (S P of
    shape (n_samples, k) with ``influence.projection_dim``), written batch by batch to a temporary ``.npy`` (in
    shards on Dask workers with ``sharding``) and returned memory-mapped: the catalog copies the file."""
    p: ScoringParams = block("influence_scoring", params)
    options = _options("last_layer_influence", p.influence, p, block("erm_training", erm_params))

    def write(path: Path) -> np.ndarray:
        if p.sharding is None:
            return write_influence(path, load_model(erm_model), train_set, **options)
        exact = {key: options[key] for key in ("weight_decay", "damping", "batch_size") if key in options}
        with dask_client(p.sharding.address, p.sharding.n_workers) as client:
            return sharded_last_layer_influence(erm_model, train_set, client, path,
                                                blocks_per_shard=p.sharding.blocks_per_shard, **exact)

    return scratch_npy("influence_vectors", write)


def numeric_metrics(info: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of ``info`` (nested dicts flattened with '.'), for MLflow metrics; strings, booleans,
    lists and None are left out (they stay in ``sample_scores['info']``)."""
    out: dict[str, float] = {}
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numeric_metrics(value, f"{name}."))
        elif (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
              and math.isfinite(float(value))):
            out[name] = float(value)
    return out


def score_method(
    erm_model: dict[str, Any],
    training_trace: TrainingTrace,
    train_set: TensorData,
    params: dict,
    erm_params: dict,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """sample_scores : {method, keep, values, info}; scoring_metrics : the numbers of info as MLflow metrics
    (``scoring.<key>``, e.g. scoring.extrapolation.holdout_spearman, scoring.cg_max_relative_residual), and
    ``scoring.influence_vectors.effective_damping``: what is added to the head's Hessian before it is inverted for
    ``influence_vectors`` (the LiSSA settings add scale * damping).

    values : ndarray of shape (n_samples,) for a scalar method (keep says which end is kept: remove the other with
    the score rule), of shape (n_samples, d) for a vector method, or None for last_layer_influence without
    extrapolation, whose vectors are ``influence_vectors`` (not stored twice). With ``extrapolation.fraction`` set,
    the method scores that fraction and the rest is extrapolated (``info['extrapolation']``; last_layer_influence
    then stores its extrapolated vectors, and the selection runs on them). With ``sharding`` (and no extrapolation)
    a method of ``sharded.SHARDED_METHODS`` is computed on Dask workers, the same scores as one process; another
    runs in one process, with a warning.
    """
    p: ScoringParams = block("influence_scoring", params)
    erm: ErmTrainingParams = block("erm_training", erm_params)
    extrapolation = check_extrapolation(p.extrapolation)
    influence_options = _options("last_layer_influence", p.influence, p, erm)
    damped = {k: v for k, v in influence_options.items() if k in ("hessian", "weight_decay", "damping", "lissa")}
    projected = {k: v for k, v in influence_options.items() if k in ("projection_dim", "sketch")}
    influence_info = {
        "effective_damping": effective_damping(**damped), "solves": solved_system(**damped, **projected),
    }
    if p.method == "last_layer_influence" and not extrapolation.enabled:
        info = {"same_as": "influence_vectors", "influence_vectors": influence_info}
        return {"method": p.method, "keep": None, "values": None, "info": info}, tracked(numeric_metrics(info))
    own = p.influence if p.method == "last_layer_influence" else p.options  # last_layer's live under influence
    options = _options(p.method, own, p, erm)
    model = load_model(erm_model)
    if extrapolation.enabled:
        scores = extrapolate_scores(
            p.method, model, train_set, trace=training_trace, config=extrapolation, options=options,
            seed=erm.training.seed if p.seed is None else p.seed, device=p.device,
        )
    elif p.sharding is not None and p.method in SHARDED_METHODS:
        with dask_client(p.sharding.address, p.sharding.n_workers) as client:
            scores = sharded_scores(p.method, erm_model, train_set, client, trace=training_trace, options=options,
                                    batch_size=influence_options.get("batch_size", 1024),
                                    blocks_per_shard=p.sharding.blocks_per_shard)
    else:
        if p.sharding is not None:
            logger.warning("influence_scoring.sharding: %s has no sharded form (sharded: %s); it runs in one process",
                           p.method, ", ".join(SHARDED_METHODS))
        scores = score_samples(p.method, model, train_set, trace=training_trace, **options)
    info = {**scores.info, "influence_vectors": influence_info}
    sample_scores = {**scores.as_arrays(), "info": info}
    return sample_scores, tracked(numeric_metrics(info))
