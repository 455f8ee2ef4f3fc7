"""ERM training: fit the configured model on the full training set (step 1 of the method), recording the
training trace that trajectory-based scorers read (what ``erm_training.trace`` asks for; nothing by default)."""

from __future__ import annotations

from typing import Any

from dataset_pruning.config import ErmTrainingParams
from dataset_pruning.data import TensorData
from dataset_pruning.scoring import TraceRecorder, TrainingTrace
from dataset_pruning.training import ModelSpec, fit, save_model


def train_erm(train_set: TensorData, params: dict) -> tuple[dict[str, Any], TrainingTrace]:
    """erm_model (spec + state_dict) and training_trace (scoring.trace.TrainingTrace)."""
    p = ErmTrainingParams.model_validate(params)
    spec = ModelSpec(p.model.name, train_set.input_shape, train_set.num_classes, p.model.options)
    recipe = p.training.recipe()
    model = spec.build(seed=recipe.seed)
    recorder = TraceRecorder(model, train_set, recipe, spec, **p.trace.model_dump())
    fit(model, train_set, recipe, desc="ERM training", **recorder.callbacks())
    return save_model(model, spec), recorder.finish()
