"""Per-sample gradient norms and dot products taken layer by layer (gradients.per_sample_gradient_norms) equal
the vmapped per-sample gradients' (FunctionalModel.per_sample_gradients) to float32 rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dataset_pruning.models.base import Classifier
from dataset_pruning.scoring.gradients import FunctionalModel, layerwise, per_sample_gradient_norms
from dataset_pruning.training import ModelSpec


def _strided_conv2d() -> Classifier:
    """Stride, dilation, padding and a bias-free layer: the cases the kernel-position products must index right."""
    features = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2), nn.ReLU(),
                             nn.Conv2d(4, 3, (2, 3), padding=(1, 0), bias=False), nn.Flatten(), nn.Linear(3 * 5 * 2, 5))
    return Classifier(features, 5, 3)


CASES = [
    ("mlp", lambda: ModelSpec("mlp", (6,), 3, {"hidden": 8, "depth": 2}).build(seed=0), (6,)),
    ("cnn1d", lambda: ModelSpec("cnn1d", (1, 40), 4, {}).build(seed=0), (1, 40)),
    ("cnn2d", lambda: ModelSpec("cnn2d", (1, 12, 12), 4, {"channels": 4, "hidden": 8}).build(seed=0), (1, 12, 12)),
    ("strided conv2d", _strided_conv2d, (2, 9, 9)),
]


@pytest.mark.parametrize("name, build, shape", CASES, ids=[case[0] for case in CASES])
def test_layerwise_norms_and_dots_equal_the_vmapped_gradients(name, build, shape):
    model = build().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(33, *shape, generator=g)
    fm = FunctionalModel(model, device="cpu")
    y = torch.randint(0, model.head.out_features, (33,), generator=g)
    assert layerwise(fm.module)
    along = torch.randn(fm.num_parameters, generator=g)
    expected = fm.per_sample_gradients(fm.theta, x, y).double()
    squares, dots = per_sample_gradient_norms(fm.module, x, y, along=along)
    assert torch.allclose(squares, (expected * expected).sum(1), rtol=1e-5, atol=0)
    assert (dots - expected @ along.double()).abs().max() <= 1e-5 * (expected.abs() @ along.double().abs()).max()
    assert per_sample_gradient_norms(fm.module, x, y)[1] is None


def test_other_layers_are_left_to_vmap():
    with_norm = Classifier(nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5)), 5, 2).eval()
    assert not layerwise(with_norm)
    with pytest.raises(ValueError, match="Linear / Conv1d / Conv2d"):
        per_sample_gradient_norms(with_norm, torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
    assert not layerwise(Classifier(nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten()), 4, 2))
