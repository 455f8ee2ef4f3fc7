"""Model builders by name; each returns a ``Classifier`` (features + linear head)."""

from dataset_pruning.models import cnn1d, cnn2d, convnet, mlp, resnet, senet  # noqa: F401  (registration)
from dataset_pruning.models.base import MODELS, Classifier, build_model

__all__ = ["MODELS", "Classifier", "build_model"]
