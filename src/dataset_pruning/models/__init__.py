"""Model builders by name; each returns a ``Classifier`` (features + linear head)."""

from dataset_pruning.models import cnn1d, cnn2d, mlp, resnet, senet  # noqa: F401  (registration)
from dataset_pruning.models.base import MODELS, Classifier, build_model
from dataset_pruning.nas import space as _nas_space  # noqa: F401,E402  (registration of nas_convnet)

__all__ = ["MODELS", "Classifier", "build_model"]
