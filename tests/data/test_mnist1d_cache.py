"""MNIST-1D is generated once per (seed, num_samples, train_split, package versions) and then read from disk."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from dataset_pruning.data import load_dataset
from dataset_pruning.data import mnist1d as module
from dataset_pruning.data.mnist1d import ARRAYS, CACHE_ENV, cache_key, cache_path, generate, mnist1d_arrays


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "mnist1d"


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_cached_arrays_equal_freshly_generated_ones(cache, monkeypatch):
    fresh = generate(seed=3, num_samples=200, train_split=0.7)
    first = mnist1d_arrays(seed=3, num_samples=200, train_split=0.7)  # generates and writes
    path = cache_path(cache_key(3, 200, 0.7))
    assert path.parent == cache and _files(cache) == [path.name]  # no temporary file left behind
    calls = []
    monkeypatch.setattr(module, "generate", lambda *args: calls.append(args))
    again = mnist1d_arrays(seed=3, num_samples=200, train_split=0.7)  # read back, not generated
    assert calls == []
    for name in ARRAYS:
        assert again[name].dtype == fresh[name].dtype and again[name].shape == fresh[name].shape
        assert np.array_equal(first[name], fresh[name]) and np.array_equal(again[name], fresh[name])
    train, test = load_dataset("mnist1d", seed=3, num_samples=200, train_split=0.7)
    assert calls == []
    assert torch.equal(train.x, torch.as_tensor(fresh["x"]).float()) and torch.equal(test.y, torch.as_tensor(fresh["y_test"]).long())
    assert len(train) == 140 and len(test) == 60


def test_each_argument_has_its_own_file(cache):
    mnist1d_arrays(seed=3, num_samples=100, train_split=0.8)
    mnist1d_arrays(seed=4, num_samples=100, train_split=0.8)
    mnist1d_arrays(seed=3, num_samples=120, train_split=0.8)
    mnist1d_arrays(seed=3, num_samples=100, train_split=0.5)
    assert len(_files(cache)) == 4
    key = cache_key(3, 100, 0.8)
    assert {"seed", "num_samples", "train_split", "mnist1d"} <= set(key)
    assert cache_path({**key, "mnist1d": "0.0.0"}) != cache_path(key)  # another package version, another file


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 half a zip", b"not an npz at all"])
def test_a_corrupt_cache_file_is_generated_again(cache, content):
    fresh = generate(seed=5, num_samples=100, train_split=0.8)
    path = cache_path(cache_key(5, 100, 0.8))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    arrays = mnist1d_arrays(seed=5, num_samples=100, train_split=0.8)
    assert all(np.array_equal(arrays[name], fresh[name]) for name in ARRAYS)
    with np.load(path, allow_pickle=False) as repaired:  # rewritten whole
        assert np.array_equal(repaired["x"], fresh["x"])


def test_a_file_for_another_key_is_not_used(cache):
    mnist1d_arrays(seed=6, num_samples=100, train_split=0.8)
    other = cache_path(cache_key(7, 100, 0.8))
    os.replace(cache_path(cache_key(6, 100, 0.8)), other)  # a file under the wrong name
    arrays = mnist1d_arrays(seed=7, num_samples=100, train_split=0.8)
    assert np.array_equal(arrays["x"], generate(seed=7, num_samples=100, train_split=0.8)["x"])


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    arrays = mnist1d_arrays(seed=8, num_samples=100, train_split=0.8)
    assert np.array_equal(arrays["x"], generate(seed=8, num_samples=100, train_split=0.8)["x"])


def test_the_global_random_state_is_left_alone(cache):
    random.seed(1), np.random.seed(1)
    expected = (random.random(), np.random.rand())
    random.seed(1), np.random.seed(1)
    mnist1d_arrays(seed=9, num_samples=100, train_split=0.8)  # the package seeds both globally
    assert (random.random(), np.random.rand()) == expected


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_path(cache_key(42, 5000, 0.8)).parent == tmp_path / ".cache" / "dataset_pruning" / "mnist1d"


def test_the_file_appears_whole_by_one_rename_in_its_folder(cache, monkeypatch):
    renames = []
    real_replace = os.replace

    def replace(source, target):
        source, target = map(str, (source, target))
        assert os.path.dirname(source) == os.path.dirname(target) and not os.path.exists(target)
        with np.load(source, allow_pickle=False) as complete:  # the temporary file is already whole
            assert set(ARRAYS) <= set(complete.files)
        renames.append(target)
        real_replace(source, target)

    monkeypatch.setattr(module.os, "replace", replace)
    mnist1d_arrays(seed=10, num_samples=100, train_split=0.8)
    assert renames == [str(cache_path(cache_key(10, 100, 0.8)))]
