"""ERM training: fit the configured model on the full training set (step 1 of the method), recording the
training trace that trajectory-based scorers read (what ``erm_training.trace`` asks for; nothing by default)."""

from __future__ import annotations

from typing import Any

from dataset_pruning import steps
from dataset_pruning.config import ErmTrainingParams, block
from dataset_pruning.data import TensorData
from dataset_pruning.scoring import TrainingTrace
from dataset_pruning.training import ModelSpec, save_model


def train_erm(train_set: TensorData, params: dict) -> tuple[dict[str, Any], TrainingTrace]:
    """erm_model (spec + state_dict) and training_trace (scoring.trace.TrainingTrace)."""
    p: ErmTrainingParams = block("erm_training", params)
    spec = ModelSpec(p.model.name, train_set.input_shape, train_set.num_classes, p.model.options)
    model, trace = steps.train_erm(train_set, spec, p.training.recipe(), p.trace.model_dump())
    return save_model(model, spec), trace
