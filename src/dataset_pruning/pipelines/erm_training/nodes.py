"""ERM training: fit the configured model on the full training set (step 1 of the method)."""

from __future__ import annotations

from typing import Any

from dataset_pruning.config import ErmTrainingParams
from dataset_pruning.data import TensorData
from dataset_pruning.training import ModelSpec, fit, save_model


def train_erm(train_set: TensorData, params: dict) -> dict[str, Any]:
    p = ErmTrainingParams.model_validate(params)
    spec = ModelSpec(p.model.name, train_set.input_shape, train_set.num_classes, p.model.options)
    recipe = p.training.recipe()
    model = spec.build(seed=recipe.seed)
    fit(model, train_set, recipe, desc="ERM training")
    return save_model(model, spec)
