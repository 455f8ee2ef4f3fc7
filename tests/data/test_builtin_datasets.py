"""The data sets generated offline (MNIST-1D, digits) and the registry of all sources."""

from __future__ import annotations

import pytest
import torch

from dataset_pruning.data import DATASETS, load_dataset
from dataset_pruning.data.idx import SOURCES


@pytest.fixture(scope="module")
def mnist1d_default():
    return load_dataset("mnist1d")


def test_mnist1d_has_the_reference_size(mnist1d_default):
    train, test = mnist1d_default
    assert len(train) == 4000 and len(test) == 1000
    assert train.input_shape == (40,) and test.input_shape == (40,)
    assert train.num_classes == 10
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert set(train.y.tolist()) == set(range(10))


def test_mnist1d_same_seed_same_data():
    first_train, first_test = load_dataset("mnist1d", seed=3, num_samples=300)
    again_train, again_test = load_dataset("mnist1d", seed=3, num_samples=300)
    other_train, _ = load_dataset("mnist1d", seed=4, num_samples=300)
    assert len(first_train) == 240 and len(first_test) == 60
    assert torch.equal(first_train.x, again_train.x) and torch.equal(first_train.y, again_train.y)
    assert torch.equal(first_test.x, again_test.x)
    assert not torch.equal(first_train.x, other_train.x)


def test_digits_split():
    train, test = load_dataset("digits", seed=0)
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert train.input_shape == (64,) and train.num_classes == 10
    assert train.x.min() >= 0 and train.x.max() <= 1
    # stratified: every class in both splits with about the same share
    train_share = torch.bincount(train.y, minlength=10).float() / len(train)
    test_share = torch.bincount(test.y, minlength=10).float() / len(test)
    assert torch.allclose(train_share, test_share, atol=0.01)
    again, _ = load_dataset("digits", seed=0)
    other, _ = load_dataset("digits", seed=1)
    assert torch.equal(train.x, again.x)
    assert not torch.equal(train.x, other.x)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="cifar10.*mnist1d"):
        load_dataset("cifar11")


# Options each on-disk source needs before it looks for files.
REQUIRED_OPTIONS = {"imagefolder": {"folder": "my_images"}}
GENERATED = {"mnist1d", "digits"}


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if n not in GENERATED])
def test_every_on_disk_source_explains_a_missing_folder(name, tmp_path, monkeypatch):
    # fashion_mnist looks in Debian's system folder after root: point that at an empty place too
    monkeypatch.setitem(SOURCES, "fashion_mnist", (SOURCES["fashion_mnist"][0], tmp_path / "no-system-folder"))
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, root=tmp_path / "empty", **REQUIRED_OPTIONS.get(name, {}))
    message = str(info.value)
    assert str(tmp_path / "empty") in message and "Nothing is downloaded" in message
