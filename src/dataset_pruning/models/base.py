"""Every classifier is ``features`` followed by one linear ``head``: the head is the paper's "last layer"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import torch
from torch import nn

from dataset_pruning.registry import Registry


class Classifier(nn.Module):
    """``forward(x) = head(features(x))``; ``features`` returns shape (batch, head.in_features)."""

    def __init__(self, features: nn.Module, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.head = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


IMAGE_ROWS = 128  # images per forward pass (feature_batches, predict_logits): memory, and speed on CPU caches


def pass_rows(x: torch.Tensor, batch_size: int) -> int:
    """Rows per forward pass of ``x``: ``batch_size``, at most ``IMAGE_ROWS`` for images (n, c, h, w)."""
    return min(batch_size, IMAGE_ROWS) if x.ndim == 4 else batch_size


@contextmanager
def relu_in_place(model: nn.Module) -> Iterator[None]:
    """Every ``nn.ReLU`` of ``model`` in place for a no-grad pass, as it was after. A ReLU otherwise allocates its
    output anew (cnn2d: 12.8 MB for 128 Fashion-MNIST images), and the feature pass over 60,000 images took 12.2 s
    against 6.8 s in place; outputs are bit for bit the same (tested on every registered model). A model whose
    first module is a ReLU would overwrite its input: no registered model has one (tested)."""
    switched = [m for m in model.modules() if isinstance(m, nn.ReLU) and not m.inplace]
    for m in switched:
        m.inplace = True
    try:
        yield
    finally:
        for m in switched:
            m.inplace = False


@torch.no_grad()
def feature_batches(
    model: Classifier, x: torch.Tensor, batch_size: int, device: torch.device
) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, ``model.features`` of rows [first, first + b)) for the batches of ``x``, in eval mode.

    Images go through in channels-last layout: oneDNN's convolutions ran 1.5-1.7x faster on this CPU (cnn2d on
    Fashion-MNIST; features equal to ~3e-6 relative). The model's parameters are contiguous again afterwards.
    Images go at most ``IMAGE_ROWS`` at a time: cnn2d's activations for 1,024 Fashion-MNIST images were ~0.2 GB,
    the default run's scoring peak, and the pass over 60,000 took 15.5 s at 1,024, ~10 s at 256, ~7 s at 128 and
    64 (one run, 2 cores); the features are bit for bit those of whole batches (mlp, cnn2d, resnet18 measured).
    ReLUs run in place (``relu_in_place``)."""
    layout = torch.channels_last if x.ndim == 4 else torch.contiguous_format
    step = pass_rows(x, batch_size)
    model.to(device, memory_format=layout).eval()
    try:
        with relu_in_place(model):
            for i in range(0, len(x), step):
                yield i, model.features(x[i : i + step].to(device, memory_format=layout))
    finally:
        model.to(memory_format=torch.contiguous_format)


# A builder takes (input_shape, num_classes, **options) and returns a Classifier.
Builder = Callable[..., Classifier]
MODELS: Registry[Builder] = Registry("model", runner={"input_shape": None, "num_classes": None})


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> Classifier:
    """Build a freshly initialised model by name. Initialisation uses torch's global RNG: seed it with
    ``torch.random.fork_rng`` around the call (``training.seeded_model`` does)."""
    options = MODELS.check(name, options)
    return MODELS.get(name)(input_shape=tuple(input_shape), num_classes=int(num_classes), **options)


def feature_size(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Width of ``features``' output for one input of ``input_shape``, found by a dry forward pass."""
    with torch.no_grad():
        return int(features(torch.zeros(2, *input_shape)).flatten(1).shape[1])
