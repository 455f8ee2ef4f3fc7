"""The registry's shared surface: loader options, the seed default, and TensorData.subset's index check."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import yaml

from dataset_pruning.data import DATASETS, TensorData, check_loader_options, load_dataset, loader_options
from dataset_pruning.data.base import check_prunable

PROJECT = Path(__file__).resolve().parents[2]


def test_loader_options_come_from_the_signature():
    assert loader_options("mnist1d") == ("num_samples", "train_split")
    assert loader_options("digits") == ("test_fraction",)
    assert loader_options("imagefolder") == (
        "folder", "image_size", "test_split", "max_classes", "samples_per_class", "normalize", "workers"
    )
    for name in DATASETS.names():
        assert "root" not in loader_options(name) and "seed" not in loader_options(name)


def test_a_misspelt_option_lists_the_valid_ones_with_a_suggestion():
    with pytest.raises(ValueError) as info:
        check_loader_options("imagefolder", {"folder": "x", "imgsize": 32})
    message = str(info.value)
    assert message.startswith(
        "data set 'imagefolder' takes no option(s) ['imgsize']; it takes: folder, image_size, test_split, "
        "max_classes, samples_per_class, normalize, workers"
    )
    assert "(did you mean 'image_size'?)" in message


def test_several_unknown_options_and_root_or_seed_as_options():
    with pytest.raises(ValueError) as info:
        check_loader_options("mnist1d", {"num_sample": 10, "seed": 1, "zzz": 0})
    message = str(info.value)
    assert "takes no option(s) ['num_sample', 'seed', 'zzz']; it takes: num_samples, train_split" in message
    assert "'num_sample': did you mean 'num_samples'?" in message and "set ingest.seed" in message


def test_valid_options_pass():
    check_loader_options("mnist1d", {})
    check_loader_options("mnist1d", {"num_samples": 300, "train_split": 0.5})
    check_loader_options("tinyimagenet", {"image_size": 32, "max_classes": 2})


def test_load_dataset_checks_options_before_loading(tmp_path):
    # Before: a raw TypeError from the loader's call ("got an unexpected keyword argument 'imgsize'").
    with pytest.raises(ValueError, match="did you mean 'image_size'"):
        load_dataset("imagefolder", root=tmp_path / "missing", folder="x", imgsize=32)
    with pytest.raises(ValueError, match="takes no option"):
        load_dataset("digits", test_frac=0.5)


def test_load_dataset_checks_option_values_before_loading(tmp_path):
    with pytest.raises(ValueError, match=r"num_samples = 'abc': input should be a valid integer"):
        load_dataset("mnist1d", num_samples="abc")
    with pytest.raises(ValueError, match=r"train_split = 1.5: input should be less than 1"):
        load_dataset("mnist1d", train_split=1.5)
    with pytest.raises(ValueError, match=r"max_classes = 0: input should be greater than or equal to 1"):
        load_dataset("imagefolder", root=tmp_path / "missing", folder="x", max_classes=0)


def test_the_seed_default_is_the_loaders_and_the_pipelines():
    """``load_dataset("mnist1d")`` is the data of a default ``kedro run`` (ingest seed 42)."""
    pipeline_seed = yaml.safe_load((PROJECT / "conf/base/parameters_ingest.yml").read_text())["ingest"]["seed"]
    loader_seed = inspect.signature(DATASETS.get("mnist1d")).parameters["seed"].default
    assert pipeline_seed == loader_seed == 42
    default_train, default_test = load_dataset("mnist1d", num_samples=300)
    explicit_train, explicit_test = load_dataset("mnist1d", seed=42, num_samples=300)
    zero_train, _ = load_dataset("mnist1d", seed=0, num_samples=300)
    assert torch.equal(default_train.x, explicit_train.x) and torch.equal(default_test.y, explicit_test.y)
    assert not torch.equal(default_train.x, zero_train.x)
    # digits keeps its own default (0); the pipeline passes its seed explicitly
    assert torch.equal(load_dataset("digits")[0].x, load_dataset("digits", seed=0)[0].x)


def _data(n=5):
    return TensorData(torch.arange(n * 2, dtype=torch.float32).view(n, 2), torch.arange(n) % 2, 2, "toy")


def test_subset_keeps_the_order():
    part = _data().subset(torch.tensor([4, 0, 2]), name="part")
    assert part.y.tolist() == [0, 0, 0] and part.x[:, 0].tolist() == [8.0, 0.0, 4.0] and part.name == "part"
    assert len(_data().subset(torch.tensor([], dtype=torch.long))) == 0
    assert len(_data().subset([1, 3])) == 2


@pytest.mark.parametrize("bad", [5, 17, -1])
def test_subset_out_of_range_names_n_and_the_index(bad):
    with pytest.raises(ValueError, match=rf"toy: subset index {bad} is out of range for a data set of n = 5 samples"):
        _data().subset(torch.tensor([0, bad, 1]))


def test_subset_rejects_masks_and_fractions():
    with pytest.raises(ValueError, match="nonzero"):
        _data().subset(torch.tensor([True, False, True, False, True]))
    with pytest.raises(ValueError, match="integer sample indices"):
        _data().subset(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(k,\)"):
        _data().subset(torch.tensor([[0, 1]]))


def _splits(train_labels, test_labels, num_classes=3):
    def split(labels, name):
        labels = torch.tensor(labels)
        return TensorData(torch.zeros(len(labels), 2), labels, num_classes, name)

    return split(train_labels, "toy-train"), split(test_labels, "toy-test")


@pytest.mark.parametrize(
    "train, test, num_classes, message",
    [
        ([0, 0, 0], [0], 1, r"toy-train has 1 class\(es\) with training samples; pruning needs at least two"),
        ([1, 1, 1], [1], 3, r"toy-train has 1 class\(es\)"),
        ([0, 1, 0], [0, 1], 3, r"toy-train: class\(es\) \[2\] of the 3 have no training sample; give"),
        ([0, 1, 2], [0, 5], 3, r"toy-test: labels \[5\] lie outside \[0, 3\)"),
    ],
)
def test_a_data_set_that_cannot_be_pruned_is_refused(train, test, num_classes, message):
    with pytest.raises(ValueError, match=message):
        check_prunable(*_splits(train, test, num_classes))


def test_a_test_class_the_training_split_lacks_is_named():
    with pytest.raises(ValueError, match=r"no training sample, and toy-test holds \[2\], which the model would never"):
        check_prunable(*_splits([0, 1, 0, 1], [0, 2], num_classes=3))
    check_prunable(*_splits([0, 1, 2, 0], [2, 1], num_classes=3))  # every class trained: accepted
