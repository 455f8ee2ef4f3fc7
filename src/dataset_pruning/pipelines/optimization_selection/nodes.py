"""Optimization selection: solve Eq. 4 or Eq. 3 over the influence vectors (step 3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataset_pruning.config import SelectionParams, block, scalar_scores_need_cardinality
from dataset_pruning.data import TensorData
from dataset_pruning.pipelines import tracked
from dataset_pruning.provenance import check_rows
from dataset_pruning.selection.choose import select_for_method


def select_samples(
    influence_vectors: np.ndarray, train_set: TensorData, params: dict, sample_scores: dict[str, Any] | None = None
) -> tuple[list[int], dict[str, Any]]:
    """removed_indices : sorted list of the training indices to remove; selection_metrics : the Theorem 1
    quantities (eps, eps/n, m/n^2), the solve's time, objective and relaxation bound, as MLflow metrics.

    ``sample_scores`` (influence_scoring.method's output) decides what is selected on: a scalar score by the rule
    (``rule``, default ``score``: remove the end it does not keep, ``ratio * n`` samples; the score's hard end
    comes from its ``info['hard']`` when it names one, as AUM does), another method's vectors by the solver (or
    by a rule, on ``vector_score``), and none (last_layer_influence) ``influence_vectors``. eps is always
    measured on ``influence_vectors``.
    """
    p: SelectionParams = block("optimization_selection", params)
    labels = train_set.y.numpy()
    scores = None if sample_scores is None else sample_scores.get("values")
    check_rows(len(labels), "optimization_selection", influence_vectors=influence_vectors, sample_scores=scores)
    if sample_scores is not None and sample_scores.get("keep") is not None and p.problem != "cardinality":
        raise ValueError(scalar_scores_need_cardinality(sample_scores["method"]))
    info = {} if sample_scores is None else (sample_scores.get("info") or {})
    removed, metrics = select_for_method(
        influence_vectors, scores, None if sample_scores is None else sample_scores.get("keep"), labels=labels,
        hard=info.get("hard"), columns=(sample_scores or {}).get("columns"), **p.model_dump(),
    )
    return removed.tolist(), tracked(metrics)
