"""The IDX loaders (fashion_mnist, mnist, kmnist) on fixtures written in the real format, and on the real files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_pruning.data import load_dataset
from dataset_pruning.data.idx import FILES, SOURCES, read_idx
from dataset_pruning.data.images import stratified_indices

DEBIAN_FOLDER = SOURCES["fashion_mnist"][1]


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """LeCun's layout: 00 00 <type> <ndim>, one big-endian int32 per dimension, the values big-endian."""
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(dtype).tobytes()


def write_idx_set(folder: Path, n_train: int = 40, n_test: int = 20, classes: int = 4, seed: int = 0,
                  compress: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % classes,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(n_test, dtype=np.uint8) % classes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in FILES.items():
        content = idx_bytes(arrays[key])
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / stem).write_bytes(content)
    return arrays


def test_read_idx_gives_the_stored_array_in_native_order(tmp_path):
    for code, array in [(0x08, np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
                        (0x0C, np.array([1, -2, 300000], dtype=np.int32)),
                        (0x0D, np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2))]:
        path = tmp_path / f"a{code}.gz"
        path.write_bytes(gzip.compress(idx_bytes(array, code)))
        read = read_idx(path)
        assert read.shape == array.shape and read.dtype.isnative
        np.testing.assert_array_equal(read, array)


def test_fashion_mnist_from_fixture_single_channel_normalised_by_train(tmp_path):
    arrays = write_idx_set(tmp_path / "fashion-mnist")
    train, test = load_dataset("fashion_mnist", root=tmp_path)
    assert train.x.shape == (40, 1, 28, 28) and test.x.shape == (20, 1, 28, 28)
    assert train.num_classes == 4 and train.name == "fashion_mnist-train"
    np.testing.assert_array_equal(train.y.numpy(), arrays["train_labels"])
    # normalised with the training split's own statistics: mean 0 and std 1 over it, not over the test split
    assert abs(float(train.x.mean())) < 1e-5 and abs(float(train.x.std(unbiased=False)) - 1) < 1e-4
    pixels = arrays["train_images"] / 255.0
    expected = (arrays["test_images"] / 255.0 - pixels.mean()) / pixels.std()
    np.testing.assert_allclose(test.x[:, 0].numpy(), expected, rtol=1e-4, atol=1e-4)
    raw, _ = load_dataset("fashion_mnist", root=tmp_path, normalize=False)
    np.testing.assert_allclose(raw.x[:, 0].numpy(), pixels, atol=1e-6)


@pytest.mark.parametrize("name", ["mnist", "kmnist"])
def test_mnist_and_kmnist_read_the_same_format_plain_files(tmp_path, name):
    arrays = write_idx_set(tmp_path / name, compress=False)
    train, test = load_dataset(name, root=tmp_path)
    assert len(train) == 40 and len(test) == 20 and train.name == f"{name}-train"
    np.testing.assert_array_equal(test.y.numpy(), arrays["test_labels"])


def test_samples_per_class_is_a_seeded_stratified_choice(tmp_path):
    write_idx_set(tmp_path / "fashion-mnist")
    a, test = load_dataset("fashion_mnist", root=tmp_path, seed=3, samples_per_class=5)
    b, _ = load_dataset("fashion_mnist", root=tmp_path, seed=3, samples_per_class=5)
    c, _ = load_dataset("fashion_mnist", root=tmp_path, seed=4, samples_per_class=5)
    assert len(a) == 20 and torch.bincount(a.y).tolist() == [5, 5, 5, 5] and len(test) == 20
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    with pytest.raises(ValueError, match="class 0 of the train split has only 10"):
        stratified_indices(np.arange(40) % 4, 11, seed=0)


def test_missing_files_say_what_to_install_and_which_files(tmp_path, monkeypatch):
    monkeypatch.setitem(SOURCES, "fashion_mnist", ("fashion-mnist", tmp_path / "no-system-folder"))
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("fashion_mnist", root=tmp_path)
    message = str(error.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "fashion-mnist") in message


def corrupt(folder: Path, stem: str, content: bytes) -> Path:
    path = folder / f"{stem}.gz"
    path.write_bytes(gzip.compress(content))
    return path


def test_bad_magic_names_the_file(tmp_path):
    folder = tmp_path / "mnist"
    write_idx_set(folder)
    path = corrupt(folder, FILES["train_images"], b"\x00\x01\x08\x03" + bytes(100))
    with pytest.raises(ValueError, match=f"{path}.*not an IDX file.*magic number is 00010803"):
        load_dataset("mnist", root=tmp_path)


def test_truncated_file_names_the_file(tmp_path):
    folder = tmp_path / "mnist"
    arrays = write_idx_set(folder)
    path = corrupt(folder, FILES["test_images"], idx_bytes(arrays["test_images"])[:-50])
    with pytest.raises(ValueError, match=f"{path} is truncated or damaged.*shape \\(20, 28, 28\\)"):
        load_dataset("mnist", root=tmp_path)
    cut = folder / f"{FILES['train_labels']}.gz"
    cut.write_bytes(cut.read_bytes()[:-10])  # a cut-off gzip stream
    with pytest.raises(ValueError, match=f"{cut} is not a readable gzip file"):
        load_dataset("mnist", root=tmp_path)


def test_label_count_that_does_not_match_the_images_names_both_files(tmp_path):
    folder = tmp_path / "kmnist"
    write_idx_set(folder)
    path = corrupt(folder, FILES["train_labels"], idx_bytes(np.zeros(39, dtype=np.uint8)))
    with pytest.raises(ValueError, match=f"{path} has 39 labels but .*train-images-idx3-ubyte.gz has 40 images"):
        load_dataset("kmnist", root=tmp_path)


@pytest.mark.skipif(not (DEBIAN_FOLDER / "train-images-idx3-ubyte.gz").is_file() and not os.environ.get("CI"),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it; under CI this runs)")
def test_the_real_fashion_mnist_from_the_debian_package(tmp_path):
    train, test = load_dataset("fashion_mnist", root=tmp_path)  # nothing under root: the system folder
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.y).tolist() == [6000] * 10 and torch.bincount(test.y).tolist() == [1000] * 10
    assert train.x.dtype == torch.float32 and abs(float(train.x.mean())) < 1e-4
