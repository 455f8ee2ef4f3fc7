"""CIFAR-10/100 read from fixtures written in the real python-pickle format (bytes keys, uint8 (n, 3072) rows)."""

from __future__ import annotations

import os
import pickle
import pickletools
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_pruning.data import load_dataset
from dataset_pruning.data.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD


def dump(path: Path, content, protocol: int = 2) -> None:
    """Protocol 2 with bytes keys: what Python 2 wrote and what ``pickle.load(..., encoding='bytes')`` returns."""
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=protocol)


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


# --- the restricted unpickler: a data file never runs code -------------------------------------------------------


class RunsCommand:
    """Unpickling this calls ``os.system`` (pickled as ``posix.system`` on Linux), which creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _valid_batch(n: int = 2) -> dict:
    return {b"batch_label": b"testing batch 1 of 1", b"labels": [0] * n, b"data": np.zeros((n, 3072), np.uint8),
            b"filenames": [b"a.png"] * n}


def _top_level(marker):
    return RunsCommand(marker)


def _in_filenames(marker):
    batch = _valid_batch()
    batch[b"filenames"] = [b"a.png", RunsCommand(marker)]
    return batch


def _as_extra_key(marker):
    return {**_valid_batch(), b"extra": (1, [RunsCommand(marker)])}


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
@pytest.mark.parametrize("build", [_top_level, _in_filenames, _as_extra_key], ids=["top-level", "filenames", "extra"])
def test_a_batch_that_would_run_a_command_is_refused_without_running_it(tmp_path, build, protocol):
    write_cifar10(tmp_path)
    marker = tmp_path / "marker"
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    dump(path, build(marker), protocol=protocol)
    with pytest.raises(ValueError) as info:
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()
    message = str(info.value)
    assert f"{path} asks to load {os.system.__module__}.system, which a CIFAR batch never holds" in message
    assert "refusing to unpickle it" in message


def test_a_meta_file_that_would_run_a_command_is_refused(tmp_path):
    write_cifar100(tmp_path)
    marker = tmp_path / "marker"
    path = tmp_path / "cifar-100-python" / "meta"
    dump(path, {b"fine_label_names": [b"x"] * 100, b"coarse_label_names": RunsCommand(marker)})
    with pytest.raises(ValueError, match=f"{path.name} asks to load {os.system.__module__}.system"):
        load_dataset("cifar100", root=tmp_path)
    assert not marker.exists()


def test_other_callables_are_refused_too(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    dump(path, {**_valid_batch(), b"x": eval})  # a builtin other than bytes
    with pytest.raises(ValueError, match=r"asks to load (__builtin__|builtins)\.eval"):
        load_dataset("cifar10", root=tmp_path)


def _numpy_batch(rng: np.random.Generator, n: int) -> dict:
    """A batch as numpy would pickle it from Python 3: array data, numpy-scalar and array labels, empty bytes."""
    return {
        b"batch_label": b"",
        b"labels": [np.int64(v) for v in rng.integers(0, 10, n)],
        b"data": rows(rng, n),
        b"filenames": [b"", b"b.png"] + [b"c.png"] * (n - 2),
        b"coarse": rng.integers(0, 10, n),
    }


@pytest.mark.parametrize("protocol", [2, 4, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_batches_with_numpy_objects_load_under_every_protocol(tmp_path, protocol):
    written = write_cifar10(tmp_path)
    rng = np.random.default_rng(5)
    batch = _numpy_batch(rng, 3)
    dump(tmp_path / "cifar-10-batches-py" / "test_batch", batch, protocol=protocol)
    _, test = load_dataset("cifar10", root=tmp_path, normalize=False)
    assert torch.equal(test.y, torch.tensor([int(v) for v in batch[b"labels"]]))
    assert torch.allclose(test.x, expected_images(batch[b"data"], (0, 0, 0), (1, 1, 1)))
    assert written["test"].shape == (3, 3072)


def test_numpy_1_module_paths_are_admitted(tmp_path):
    """numpy 1 (and the real files, written by Python 2 with numpy 1) name ``numpy.core.multiarray``."""
    write_cifar10(tmp_path)
    batch = _numpy_batch(np.random.default_rng(6), 2)
    stream = pickle.dumps(batch, protocol=2)
    assert b"numpy._core.multiarray\n_reconstruct" in stream  # protocol 2 names globals as text lines
    old = stream.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    globals_named = {arg for op, arg, _ in pickletools.genops(old) if op.name == "GLOBAL"}
    assert "numpy.core.multiarray _reconstruct" in globals_named and "numpy.core.multiarray scalar" in globals_named
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(old)
    _, test = load_dataset("cifar10", root=tmp_path, normalize=False)
    assert torch.allclose(test.x, expected_images(batch[b"data"], (0, 0, 0), (1, 1, 1)))
    assert test.y.tolist() == [int(v) for v in batch[b"labels"]]
