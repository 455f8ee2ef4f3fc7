"""A small 2-D CNN for 28x28 grayscale images (Fashion-MNIST, MNIST, KMNIST): the CPU recipe's model."""

from __future__ import annotations

from torch import nn

from dataset_pruning.models.base import MODELS, Classifier, feature_size
from dataset_pruning.models.resnet import _check_image_shape


@MODELS.register("cnn2d")
def cnn2d(
    *, input_shape: tuple[int, ...], num_classes: int, channels: int = 32, hidden: int = 128
) -> Classifier:
    """conv3x3(c) -> ReLU -> max-pool 2 -> conv3x3(2c) -> ReLU -> max-pool 2 -> linear(hidden) -> ReLU -> head.

    Features have shape (batch, hidden): the head (the paper's last layer) has (hidden + 1) * num_classes
    parameters, 1,290 at the defaults with 10 classes.
    """
    in_channels = _check_image_shape("cnn2d", input_shape)
    if channels < 1 or hidden < 1:
        raise ValueError(f"cnn2d: channels and hidden must be >= 1, got {channels} and {hidden}")
    convolutions = nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    features = nn.Sequential(
        convolutions, nn.Linear(feature_size(convolutions, input_shape), hidden), nn.ReLU()
    )
    return Classifier(features, hidden, num_classes)
