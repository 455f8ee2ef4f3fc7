"""The MNIST-1D reference 1-D CNN: three strided Conv1d layers then the linear head."""

from __future__ import annotations

from torch import nn

from dataset_pruning.models.base import MODELS, Classifier, feature_size


class _AddChannel(nn.Module):
    """(batch, length) -> (batch, 1, length); inputs that already have channels pass unchanged."""

    def forward(self, x):
        return x.unsqueeze(1) if x.ndim == 2 else x


@MODELS.register("cnn1d")
def cnn1d(*, input_shape: tuple[int, ...], num_classes: int, channels: int = 25) -> Classifier:
    """Conv1d k5 s2, k3 s2, k3 s2 with ReLU; on length 40 this is the reference's 5,210 parameters."""
    in_channels = 1 if len(input_shape) == 1 else input_shape[0]
    features = nn.Sequential(
        _AddChannel(),
        nn.Conv1d(in_channels, channels, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    )
    return Classifier(features, feature_size(features, input_shape), num_classes)
