"""CIFAR-10/100 read from fixtures written in the real python-pickle format (bytes keys, uint8 (n, 3072) rows)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_pruning.data import load_dataset
from dataset_pruning.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD


def dump(path: Path, content: dict) -> None:
    """Protocol 2 with bytes keys: what Python 2 wrote and what ``pickle.load(..., encoding='bytes')`` returns."""
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=2)


def rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 4, test_size: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    dump(directory / "batches.meta", {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072})
    data, labels = [], []
    for i in range(1, 6):
        batch, batch_labels = rows(rng, per_batch), rng.integers(0, 10, per_batch).tolist()
        dump(
            directory / f"data_batch_{i}",
            {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"labels": batch_labels,
                b"data": batch,
                b"filenames": [f"img_{i}_{k}.png".encode() for k in range(per_batch)],
            },
        )
        data.append(batch)
        labels += batch_labels
    test, test_labels = rows(rng, test_size), rng.integers(0, 10, test_size).tolist()
    dump(
        directory / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": test_labels,
            b"data": test,
            b"filenames": [b"t.png"] * test_size,
        },
    )
    return {
        "train": np.concatenate(data),
        "train_labels": np.array(labels),
        "test": test,
        "test_labels": np.array(test_labels),
    }


def write_cifar100(root: Path, train_size: int = 6, test_size: int = 4, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    directory = root / "cifar-100-python"
    directory.mkdir(parents=True)
    dump(
        directory / "meta",
        {
            b"fine_label_names": [f"fine_{k}".encode() for k in range(100)],
            b"coarse_label_names": [f"coarse_{k}".encode() for k in range(20)],
        },
    )
    out = {}
    for split, n in (("train", train_size), ("test", test_size)):
        data, fine, coarse = rows(rng, n), rng.integers(0, 100, n).tolist(), rng.integers(0, 20, n).tolist()
        dump(
            directory / split,
            {
                b"filenames": [b"x.png"] * n,
                b"batch_label": f"{split} batch".encode(),
                b"fine_labels": fine,
                b"coarse_labels": coarse,
                b"data": data,
            },
        )
        out[split], out[f"{split}_fine"], out[f"{split}_coarse"] = data, np.array(fine), np.array(coarse)
    return out


def expected_images(data: np.ndarray, mean, std) -> torch.Tensor:
    """Row layout: 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane."""
    pixels = torch.from_numpy(data.astype(np.float32) / 255.0).view(-1, 3, 32, 32)
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def test_cifar10_shapes_labels_and_normalisation(tmp_path):
    written = write_cifar10(tmp_path)
    train, test = load_dataset("cifar10", root=tmp_path)
    assert train.x.shape == (20, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert train.num_classes == test.num_classes == 10
    assert torch.equal(train.y, torch.from_numpy(written["train_labels"]))
    assert torch.equal(test.y, torch.from_numpy(written["test_labels"]))
    assert torch.allclose(train.x, expected_images(written["train"], CIFAR10_MEAN, CIFAR10_STD), atol=1e-5)
    assert torch.allclose(test.x, expected_images(written["test"], CIFAR10_MEAN, CIFAR10_STD), atol=1e-5)
    # one pixel by hand: image 7, green channel, row 2, column 5
    value = written["train"][7, 1024 + 2 * 32 + 5] / 255.0
    assert train.x[7, 1, 2, 5].item() == pytest.approx((value - CIFAR10_MEAN[1]) / CIFAR10_STD[1], abs=1e-5)


def test_cifar10_without_normalisation_is_unit_range(tmp_path):
    written = write_cifar10(tmp_path)
    train, _ = load_dataset("cifar10", root=tmp_path, normalize=False)
    assert torch.allclose(train.x, expected_images(written["train"], (0, 0, 0), (1, 1, 1)))
    assert train.x.min() >= 0 and train.x.max() <= 1


def test_cifar10_missing_folder_shows_the_expected_tree(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    for name in ("batches.meta", "data_batch_1", "data_batch_5", "test_batch", "cifar-10-python.tar.gz"):
        assert name in message


def test_cifar10_missing_batch_is_named(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_corrupt_file_is_a_value_error(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="data_batch_2 is not a readable CIFAR python pickle"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_wrong_row_width_is_a_value_error(tmp_path):
    write_cifar10(tmp_path)
    dump(tmp_path / "cifar-10-batches-py" / "test_batch", {b"labels": [0, 1], b"data": np.zeros((2, 1024), np.uint8)})
    with pytest.raises(ValueError, match=r"shape \(n, 3072\)"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_label_count_mismatch_and_range(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    dump(path, {b"labels": [0], b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(ValueError, match="one integer label per row"):
        load_dataset("cifar10", root=tmp_path)
    dump(path, {b"labels": [0, 10], b"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar100_fine_and_coarse_labels(tmp_path):
    written = write_cifar100(tmp_path)
    train, test = load_dataset("cifar100", root=tmp_path)
    assert train.x.shape == (6, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert train.num_classes == 100
    assert torch.equal(train.y, torch.from_numpy(written["train_fine"]))
    assert torch.equal(test.y, torch.from_numpy(written["test_fine"]))
    assert torch.allclose(train.x, expected_images(written["train"], CIFAR100_MEAN, CIFAR100_STD), atol=1e-5)
    coarse_train, coarse_test = load_dataset("cifar100", root=tmp_path, label_type="coarse")
    assert coarse_train.num_classes == 20
    assert torch.equal(coarse_train.y, torch.from_numpy(written["train_coarse"]))
    assert torch.equal(coarse_test.y, torch.from_numpy(written["test_coarse"]))
    assert torch.equal(coarse_train.x, train.x)


def test_cifar100_rejects_unknown_label_type(tmp_path):
    write_cifar100(tmp_path)
    with pytest.raises(ValueError, match="'fine'.*'coarse'"):
        load_dataset("cifar100", root=tmp_path, label_type="superclass")


def test_cifar100_missing_folder_and_meta(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-100-python") as info:
        load_dataset("cifar100", root=tmp_path)
    assert "meta" in str(info.value) and "train" in str(info.value)
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "meta").unlink()
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python[/\\]meta"):
        load_dataset("cifar100", root=tmp_path)
