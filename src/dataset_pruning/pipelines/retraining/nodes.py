"""Retraining: a fresh model on the kept samples, and the figures of Theorem 1 (step 4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset_pruning import steps
from dataset_pruning.config import ErmTrainingParams, RetrainingParams, block
from dataset_pruning.data import TensorData, kept_indices
from dataset_pruning.pipelines import tracked
from dataset_pruning.provenance import check_indices
from dataset_pruning.reporting import pruning_figure, run_label
from dataset_pruning.runtime import release_pages
from dataset_pruning.selection import theorem_quantities
from dataset_pruning.training import ModelSpec, evaluate, load_model, retraining_recipe, save_model


def retrain(train_set: TensorData, removed_indices: list[int], params: dict, erm_params: dict) -> dict[str, Any]:
    """A freshly initialised model (same seed as ERM unless configured), same recipe, on the kept samples; with
    ``budget: steps`` as many optimizer steps as ERM took on the full set."""
    check_indices(len(train_set), removed_indices, "retraining")
    p: RetrainingParams = block("retraining", params)
    erm: ErmTrainingParams = block("erm_training", erm_params)
    model_params = p.model or erm.model
    recipe = retraining_recipe((p.training or erm.training).recipe(), len(train_set), p.budget)
    spec = ModelSpec(model_params.name, train_set.input_shape, train_set.num_classes, model_params.options)
    model, _ = steps.retrain(train_set, removed_indices, spec, recipe)
    return save_model(model, spec)


def measure_pruning(
    erm_model: dict[str, Any],
    retrained_model: dict[str, Any],
    train_set: TensorData,
    test_set: TensorData,
    influence_vectors: np.ndarray,
    removed_indices: list[int],
    parameters: dict[str, Any],
):
    """pruning_metrics (plain dict), the same as MLflow metrics, the figure (titled with what the run is), and the
    exports: kept and removed indices as CSV and .npy."""
    check_indices(len(influence_vectors), removed_indices, "retraining.measure_pruning")
    removed = np.asarray(removed_indices, dtype=np.int64)
    full, pruned = evaluate(load_model(erm_model), test_set), evaluate(load_model(retrained_model), test_set)
    metrics = steps.pruning_metrics(len(influence_vectors), removed, full, pruned,
                                    theorem_quantities(influence_vectors, removed))
    release_pages(influence_vectors)  # eps read the removed rows: the figure reads S again a block at a time
    figure = pruning_figure(influence_vectors, removed, metrics, train_set.y.numpy(), run_label(parameters))
    exports = {"kept_indices": kept_indices(len(train_set), removed), "removed_indices": removed}
    return metrics, tracked(metrics), figure, exports
