"""The 720-ConvNet search space: the grid, every architecture builds and runs in 1-D and 2-D, seeded samples."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from dataset_pruning.models import MODELS, build_model
from dataset_pruning.nas import ConvNetArch, sample_architectures, search_space
from dataset_pruning.nas.space import ACTIVATIONS, DEPTHS, NORMALIZATIONS, POOLINGS, WIDTHS


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_space_enumerates_720_distinct_architectures_in_grid_order():
    space = search_space()
    assert len(space) == 720 == len(set(space)) == len({arch.name for arch in space})
    grid = list(itertools.product(WIDTHS, DEPTHS, ACTIVATIONS, NORMALIZATIONS, POOLINGS))
    assert [(a.width, a.depth, a.activation, a.normalization, a.pooling) for a in space] == grid
    assert [a.index for a in space] == list(range(720))
    assert all(ConvNetArch.from_name(a.name) == a for a in space)
    assert search_space() == space  # a fixed order, every call


@pytest.mark.parametrize("input_shape", [(16,), (2, 16), (1, 16, 16)], ids=["1d", "1d-channels", "2d"])
def test_every_architecture_builds_and_runs_a_forward_pass(input_shape):
    """All 720 at 1/8 width (4..32 channels) on the smallest input that depth 4 with pooling allows (16)."""
    x = torch.randn(3, *input_shape, generator=torch.Generator().manual_seed(0))
    for arch in search_space():
        model = arch.spec(input_shape, num_classes=5, width_scale=0.125).build(seed=0).eval()
        with torch.no_grad():
            features, logits = model.features(x), model(x)
        assert features.shape == (3, model.head.in_features), arch.name
        assert logits.shape == (3, 5) and torch.isfinite(logits).all(), arch.name


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_full_width_on_mnist1d_inputs(depth, pooling):
    """Length 40: pooling halves it per block (40 -> 20 -> 10 -> 5 -> 2), never below 1."""
    model = build_model("nas_convnet", (40,), 10, width=256, depth=depth, pooling=pooling, normalization="batch")
    length = 40 // 2**depth if pooling != "none" else 40
    assert model.head.in_features == 256 * length
    assert model(torch.zeros(2, 40)).shape == (2, 10)
    convs = [m for m in model.features if isinstance(m, nn.Conv1d)]
    assert len(convs) == depth and all(c.kernel_size == (3,) and c.out_channels == 256 for c in convs)


def test_normalization_layers():
    def norm(name):
        model = build_model("nas_convnet", (3, 16, 16), 10, width=32, depth=1, normalization=name)
        return model.features[1]

    assert isinstance(norm("none"), nn.Identity)
    assert isinstance(norm("batch"), nn.BatchNorm2d)
    assert (norm("layer").num_groups, norm("layer").num_channels) == (1, 32)
    assert (norm("instance").num_groups, norm("instance").num_channels) == (32, 32)
    assert (norm("group").num_groups, norm("group").num_channels) == (4, 32)


def test_building_leaves_batch_norm_statistics_untouched():
    model = build_model("nas_convnet", (40,), 10, normalization="batch")
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert bn and all(int(m.num_batches_tracked) == 0 and torch.all(m.running_var == 1) for m in bn)


def test_registered_as_a_model_with_the_reference_default():
    assert "nas_convnet" in MODELS
    model = ConvNetArch().spec((40,), 10).build(seed=0)
    assert ConvNetArch().name == "w128-d3-relu-instance-avg"
    assert model.head.in_features == 128 * 5


def test_bad_architectures_and_inputs_are_refused():
    with pytest.raises(ValueError, match="known: 32, 64, 128, 256"):
        ConvNetArch(width=48)
    with pytest.raises(ValueError, match="known: sigmoid, relu, leakyrelu"):
        ConvNetArch(activation="swish")
    with pytest.raises(ValueError, match="smaller than 2\\*\\*4"):
        build_model("nas_convnet", (8,), 10, depth=4, pooling="max")
    build_model("nas_convnet", (8,), 10, depth=4, pooling="none")  # no pooling: any length
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model("nas_convnet", (16,), 10, width=32, normalization="group", width_scale=0.1)
    with pytest.raises(ValueError, match="not an architecture name"):
        ConvNetArch.from_name("resnet18")


def test_seeded_sample():
    first, again, other = sample_architectures(30, seed=1), sample_architectures(30, seed=1), sample_architectures(30, 2)
    assert first == again and first != other
    assert len(set(first)) == 30 and [a.index for a in first] == sorted(a.index for a in first)
    assert sample_architectures(None, seed=0) == search_space() == sample_architectures(720, seed=5)
    for bad in (0, 721):
        with pytest.raises(ValueError, match="sample size"):
            sample_architectures(bad, seed=0)


def test_nas_library_imports_neither_kedro_nor_mlflow_nor_dask():
    """dask is imported only when the Dask executor runs."""
    import subprocess
    import sys

    code = (
        "import sys\nimport dataset_pruning.nas, dataset_pruning.nas.proxy, dataset_pruning.nas.figure\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kedro', 'kedro_mlflow', 'mlflow', 'dask'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
