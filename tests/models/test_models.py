"""Every registered model: builds on a matching tiny input, is features + linear head, seeds its weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dataset_pruning.models import MODELS, Classifier, build_model
from dataset_pruning.models.base import feature_size
from dataset_pruning.training import ModelSpec

SEQUENCE = (40,)  # MNIST-1D
IMAGE = (3, 32, 32)  # CIFAR
# Tiny settings for models that have a width option; a model missing here is built with its defaults on the
# first input shape it accepts, so a new registry entry is tested without editing this file.
TINY: dict[str, tuple[tuple[int, ...], dict]] = {
    "mlp": (SEQUENCE, {"hidden": 16}),
    "cnn1d": (SEQUENCE, {}),
    "resnet18": (IMAGE, {"width": 4}),
    "resnet50": (IMAGE, {"width": 2}),
    "senet": (IMAGE, {"width": 4}),
}
IMAGE_MODELS = ["resnet18", "resnet50", "senet"]


def tiny_spec(name: str, num_classes: int = 7) -> ModelSpec:
    if name in TINY:
        shape, options = TINY[name]
        return ModelSpec(name, shape, num_classes, options)
    for shape in (IMAGE, SEQUENCE):
        try:
            build_model(name, shape, num_classes)
        except ValueError:
            continue
        return ModelSpec(name, shape, num_classes, {})
    pytest.fail(f"model {name!r} builds on neither {IMAGE} nor {SEQUENCE}; add its tiny settings to TINY")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_shape_and_linear_head(name):
    spec = tiny_spec(name)
    model = spec.build(seed=0)
    assert isinstance(model, Classifier)
    assert isinstance(model.head, nn.Linear)
    x = torch.randn(5, *spec.input_shape, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        features = model.features(x)
        logits = model(x)
    assert features.shape == (5, model.head.in_features)
    assert feature_size(model.features, spec.input_shape) == model.head.in_features
    assert model.head.out_features == spec.num_classes
    assert logits.shape == (5, spec.num_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODELS.names())
def test_same_seed_same_weights(name):
    spec = tiny_spec(name)
    first, again, other = spec.build(seed=3), spec.build(seed=3), spec.build(seed=4)
    a, b, c = first.state_dict(), again.state_dict(), other.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a), "a different seed must give different weights"


@pytest.mark.parametrize("name", MODELS.names())
def test_trains_in_train_mode(name):
    """One backward pass reaches every parameter (nothing is detached or unused)."""
    spec = tiny_spec(name, num_classes=3)
    model = spec.build(seed=0).train()
    x = torch.randn(4, *spec.input_shape, generator=torch.Generator().manual_seed(2))
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    missing = [k for k, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_cnn1d_has_the_reference_parameter_count():
    assert count(build_model("cnn1d", SEQUENCE, 10)) == 5210


@pytest.mark.parametrize(
    "name, expected",
    # CIFAR-style counts with 10 classes (pytorch-cifar's ResNet18/ResNet50 have the same); senet: module docstring.
    [("resnet18", 11_173_962), ("resnet50", 23_520_842), ("senet", 1_216_177)],
)
def test_default_width_parameter_counts(name, expected):
    assert count(build_model(name, IMAGE, 10)) == expected


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_keep_the_cifar_resolution_in_the_stem(name):
    """CIFAR style: 3x3 stride-1 stem and no max-pool, so the first stage sees 32x32."""
    model = build_model(name, IMAGE, 10, **TINY[name][1])
    stem = model.features[0]
    assert isinstance(stem, nn.Conv2d) and stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_accept_other_channels_and_sizes(name):
    model = build_model(name, (1, 28, 28), 4, **TINY[name][1]).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 4)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_reject_vector_inputs(name):
    with pytest.raises(ValueError, match="channels, height, width"):
        build_model(name, SEQUENCE, 10)


def test_senet_gates_every_block():
    from dataset_pruning.models.senet import SqueezeExcitation

    model = build_model("senet", IMAGE, 10, width=4)
    assert sum(isinstance(m, SqueezeExcitation) for m in model.modules()) == 8


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="resnet18"):
        build_model("resnet19", IMAGE, 10)


@pytest.mark.parametrize("name", ["mlp", "cnn2d"])
def test_image_passes_in_chunks_give_the_same_bits(name, monkeypatch):
    """feature_batches and predict_logits take images IMAGE_ROWS at a time (memory): features, head inputs and
    logits are bit for bit those of whole batches, so S and every figure stay the same."""
    import dataset_pruning.models.base as base
    import dataset_pruning.training as training
    from dataset_pruning.data import TensorData
    from dataset_pruning.scoring.influence import head_inputs

    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), 10)
    data = TensorData(torch.randn(700, 1, 28, 28), torch.randint(0, 10, (700,)), num_classes=10, name="noise")
    chunked = head_inputs(model, data, 512, "cpu"), training.predict_logits(model, data.x, 512, "cpu")
    assert base.IMAGE_ROWS < 512
    monkeypatch.setattr(base, "IMAGE_ROWS", 10**9)
    whole = head_inputs(model, data, 512, "cpu"), training.predict_logits(model, data.x, 512, "cpu")
    assert all(torch.equal(a, b) for a, b in zip([*chunked[0], chunked[1]], [*whole[0], whole[1]]))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_passes_with_relu_in_place_give_the_same_bits_and_leave_the_model_as_it_was(name):
    """relu_in_place (feature_batches, predict_logits) saves an allocation per ReLU: features and logits are bit
    for bit those of the model as built, and its ReLUs are not in place afterwards."""
    from dataset_pruning.models.base import relu_in_place

    spec = tiny_spec(name)
    model = spec.build(seed=0).eval()
    x = torch.randn(6, *spec.input_shape)
    given = x.clone()
    with torch.no_grad():
        before = model.features(x), model(x)
        with relu_in_place(model):
            assert any(isinstance(m, nn.ReLU) for m in model.modules()) <= all(
                m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
            inside = model.features(x), model(x)
    assert all(torch.equal(a, b) for a, b in zip(before, inside)) and torch.equal(x, given)
    assert not any(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
