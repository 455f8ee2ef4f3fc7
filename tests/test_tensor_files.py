"""Stored outputs load without running code: torch weights_only files and .npy without pickles."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from kedro.io import Version

from dataset_pruning.data import TensorData
from dataset_pruning.catalog.storage import NpyDataset, TensorStoreDataset
from dataset_pruning.scoring import TrainingTrace
from dataset_pruning.tensor_files import load_tensors, save_tensors


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_stored_objects_round_trip(tmp_path):
    data = TensorData(torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0]), 3, "tiny")
    trace = TrainingTrace(spec={"name": "mlp", "input_shape": (3,)}, config={"lr": 0.1}, n_samples=5,
                          step_lrs=torch.ones(4, dtype=torch.float64), checkpoints=[{"epoch": 1, "state_dict": {
                              "w": torch.ones(2)}}])
    obj = {"train": data, "trace": trace, "values": np.arange(5.0), "info": {"k": np.int64(3), "names": ["a"]}}
    save_tensors(obj, tmp_path / "obj.pt")
    back = load_tensors(tmp_path / "obj.pt")
    assert torch.equal(back["train"].x, data.x) and back["train"].name == "tiny"
    assert back["trace"].checkpoints[0]["state_dict"]["w"].sum() == 2 and back["trace"].spec["input_shape"] == (3,)
    assert isinstance(back["values"], np.ndarray) and back["values"].tolist() == list(range(5))
    assert back["info"] == {"k": 3, "names": ["a"]}


@pytest.mark.parametrize("nested", [False, True])
def test_a_crafted_tensor_file_does_not_run_code(tmp_path, nested):
    marker = tmp_path / "ran"
    payload = {"state_dict": {"w": torch.ones(1)}, "spec": RunsACommand(marker)} if nested else RunsACommand(marker)
    path = tmp_path / "erm_model.pt"
    torch.save(payload, path)  # what an attacker (or a plain pickle) would leave in place of a model
    dataset = TensorStoreDataset(filepath=str(path), version=None)
    with pytest.raises(Exception, match="weights_only"):
        dataset.load()
    assert not marker.exists()
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match="not a tensor file this project wrote"):
        load_tensors(path)
    assert not marker.exists()


def test_npy_refuses_object_arrays_and_saves_atomically(tmp_path):
    version = Version(None, "2026-01-01T00.00.00.000Z")
    dataset = NpyDataset(filepath=str(tmp_path / "S.npy"), version=version)
    dataset.save(np.ones((3, 2), dtype=np.float32))
    folder = tmp_path / "S.npy" / version.save
    assert sorted(p.name for p in folder.iterdir()) == ["S.npy"]  # no temporary file left behind
    np.save(folder / "S.npy", np.array([RunsACommand(tmp_path / "ran")], dtype=object), allow_pickle=True)
    with pytest.raises(Exception, match="Object arrays cannot be loaded when allow_pickle=False"):
        NpyDataset(filepath=str(tmp_path / "S.npy"), version=Version(version.save, None)).load()
    assert not (tmp_path / "ran").exists()


def test_a_full_disk_is_named_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    from collections import namedtuple

    from dataset_pruning.errors import StorageError
    from dataset_pruning.tensor_files import save_array

    def short_write(*args, **kwargs):  # what numpy says on a full disk: no errno
        raise OSError("604800 requested and 36832 written")

    monkeypatch.setattr(np, "save", short_write)
    monkeypatch.setattr("shutil.disk_usage", lambda path: namedtuple("usage", "total used free")(10**9, 10**9, 0))
    with pytest.raises(StorageError, match=rf"^no space left on {tmp_path / 'S'} \(its disk is full\)"):
        save_array(np.zeros(3), tmp_path / "S" / "S.npy")
    assert list((tmp_path / "S").iterdir()) == []


def test_a_damaged_file_names_its_dataset_and_version(tmp_path):
    version = "2026-01-01T00.00.00.000Z"
    folder = tmp_path / "influence_vectors.npy" / version
    folder.mkdir(parents=True)
    np.save(folder / "influence_vectors.npy", np.ones((4, 2), dtype=np.float32))
    (folder / "influence_vectors.npy").write_bytes((folder / "influence_vectors.npy").read_bytes()[:100])
    dataset = NpyDataset(filepath=str(tmp_path / "influence_vectors.npy"), version=Version(version, None))
    with pytest.raises(Exception) as raised:
        dataset.load()
    assert str(raised.value.__cause__).startswith(f"influence_vectors version {version} is damaged")
    store = tmp_path / "erm_model.pt" / version
    store.mkdir(parents=True)
    (store / "erm_model.pt").write_bytes(b"not a tensor file")
    with pytest.raises(Exception) as raised:
        TensorStoreDataset(filepath=str(tmp_path / "erm_model.pt"), version=Version(version, None)).load()
    assert str(raised.value.__cause__).startswith(f"erm_model version {version} is damaged")


def test_a_whole_mapped_npy_is_stored_by_copying_the_file_and_a_view_by_value(tmp_path):
    """save_array copies the file of a whole ``np.load(mmap_mode='r')`` array (a streamed S: no page is read into
    the process), and saves a slice or transpose of it by value."""
    from dataset_pruning.tensor_files import save_array

    a = np.random.default_rng(0).standard_normal((300, 7)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    save_array(mapped, tmp_path / "whole.npy")
    assert (tmp_path / "whole.npy").read_bytes() == (tmp_path / "a.npy").read_bytes()
    for name, view, expected in (("rows", mapped[10:], a[10:]), ("t", mapped.T, a.T)):
        save_array(view, tmp_path / f"{name}.npy")
        assert np.array_equal(np.load(tmp_path / f"{name}.npy"), expected)
