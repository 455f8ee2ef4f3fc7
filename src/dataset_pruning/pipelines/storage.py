"""Catalog datasets whose files cannot run code when loaded (no pickles).

- ``TensorStoreDataset``: models, data splits, the training trace and sample scores. ``torch.save`` writes them;
  ``torch.load(weights_only=True)`` reads them, and that loader rebuilds only tensors, dicts, lists, tuples, str,
  numbers and None: a crafted file raises instead of running code. The project's two stored dataclasses
  (``TensorData``, ``TrainingTrace``) and numpy arrays are written as tagged dicts and rebuilt by name from
  ``STORED_CLASSES``; nothing else is rebuilt.
- ``NpyDataset``: the (n, d) influence matrix as ``.npy``, read with ``allow_pickle=False``.

Both write to a temporary file beside the target and rename it, so a failed or interrupted save never leaves
half a file where a later run would read it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np
import torch
from kedro.io import AbstractVersionedDataset, Version

from dataset_pruning.data import TensorData
from dataset_pruning.scoring import TrainingTrace

STORED_CLASSES = {cls.__name__: cls for cls in (TensorData, TrainingTrace)}
_CLASS, _ARRAY = "__stored_class__", "__ndarray__"


def encode(obj: Any) -> Any:
    """Plain containers of tensors: dataclasses of ``STORED_CLASSES`` and ndarrays become tagged dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in STORED_CLASSES:
            raise TypeError(f"cannot store a {name}; the stored classes are {sorted(STORED_CLASSES)}")
        return {_CLASS: name, **{f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {key: encode(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(encode(value) for value in obj)
    return obj


def decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ARRAY in obj:
            return obj[_ARRAY].numpy()
        fields = {key: decode(value) for key, value in obj.items() if key != _CLASS}
        if _CLASS in obj:
            return STORED_CLASSES[obj[_CLASS]](**fields)
        return fields
    if isinstance(obj, (list, tuple)):
        return type(obj)(decode(value) for value in obj)
    return obj


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """``write(temporary_path)``, then rename onto ``path`` (same folder, so the rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


class _LocalVersionedDataset(AbstractVersionedDataset):
    def __init__(self, *, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self.metadata = metadata

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_file()
        except Exception:  # no version on disk yet
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}


class TensorStoreDataset(_LocalVersionedDataset):
    """``torch.save`` / ``torch.load(weights_only=True)`` of tensors in plain containers (see the module doc)."""

    def _load(self) -> Any:
        path = Path(self._get_load_path())
        try:
            return decode(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as error:
            raise ValueError(
                f"{path} is not a tensor file this project wrote ({type(error).__name__}: {str(error)[:200]}); "
                "files are loaded with torch.load(weights_only=True), which refuses anything that would run code. "
                "Rerun the stage that writes it."
            ) from error

    def _save(self, data: Any) -> None:
        encoded = encode(data)
        write_atomically(Path(self._get_save_path()), lambda path: torch.save(encoded, path))


class NpyDataset(_LocalVersionedDataset):
    """One ndarray as ``.npy`` (``np.load(allow_pickle=False)``: object arrays are refused)."""

    def _load(self) -> np.ndarray:
        return np.load(Path(self._get_load_path()), allow_pickle=False)

    def _save(self, data: np.ndarray) -> None:
        array = np.asarray(data)

        def write(path: str) -> None:
            with open(path, "wb") as handle:
                np.save(handle, array, allow_pickle=False)

        write_atomically(Path(self._get_save_path()), write)
