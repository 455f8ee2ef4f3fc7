"""Files that cannot run code when loaded: tensors in plain containers, written atomically.

``save_tensors`` writes with ``torch.save``; ``load_tensors`` reads with ``torch.load(weights_only=True)``, which
rebuilds only tensors, dicts, lists, tuples, str, numbers and None, so a crafted file raises instead of running
code. The project's two stored dataclasses (``TensorData``, ``TrainingTrace``) and numpy arrays are written as
tagged dicts and rebuilt by name from ``STORED_CLASSES``; nothing else is rebuilt. Used by the catalog's datasets
(catalog/storage.py) and the sweep's cache.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dataset_pruning.data import TensorData
from dataset_pruning.errors import storage_error
from dataset_pruning.runtime import npy_mapping
from dataset_pruning.training_trace import TrainingTrace

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
    """``write(temporary_path)``, then rename onto ``path`` (same folder, so the rename is atomic). A full disk or
    a folder that cannot be written is an ``errors.StorageError`` naming the folder."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(handle)
        write(temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch.save reports a short write as a RuntimeError
        problem = storage_error(path.parent if path.parent.exists() else _existing(path.parent), error)
        if problem is None:
            raise
        raise problem from error
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)


def _existing(folder: Path) -> Path:
    return next(p for p in [folder, *folder.parents] if p.exists())


def save_tensors(obj: Any, path: str | Path) -> None:
    encoded = encode(obj)
    write_atomically(Path(path), lambda temporary: torch.save(encoded, temporary))


def save_array(array: np.ndarray, path: str | Path) -> None:
    """One ndarray as ``.npy`` without pickles (object arrays are refused). A whole ``.npy`` file memory-mapped by
    ``np.load`` (a streamed S) is copied as a file: reading it through the mapping would page all of it in."""
    if npy_mapping(array) is not None and _whole_npy(array):
        write_atomically(Path(path), lambda temporary: shutil.copyfile(array.filename, temporary))
        return
    array = np.asarray(array)

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    write_atomically(Path(path), write)


def scratch_npy(name: str, write: Callable[[Path], np.ndarray]) -> np.ndarray:
    """``write(path)``'s array, memory-mapped from a ``.npy`` it writes at ``path`` (a new folder under TMPDIR),
    which is removed when that array is garbage-collected (after the catalog has copied the file), or at once if
    ``write`` raises."""
    folder = Path(tempfile.mkdtemp(prefix=f"{name}."))
    try:
        array = write(folder / f"{name}.npy")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(array, shutil.rmtree, folder, True)
    return array


def _whole_npy(array: np.memmap) -> bool:
    """Whether ``array`` is all of the ``.npy`` file it maps (not a slice or view of it)."""
    with open(array.filename, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            return False
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(handle)
        offset = handle.tell()
    return (array.offset == offset and array.shape == shape and array.dtype == dtype and not fortran
            and array.flags.c_contiguous)


def load_tensors(path: str | Path) -> Any:
    """The stored object, its tensors memory-mapped (copy on write): a node reads only the pages it touches, so
    the selection, which needs train_set's labels, does not hold its 0.19 GB of Fashion-MNIST images."""
    path = Path(path)
    try:
        return decode(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
    except Exception as error:
        raise ValueError(
            f"{path} is not a tensor file this project wrote ({type(error).__name__}: {str(error)[:200]}); "
            "files are loaded with torch.load(weights_only=True), which refuses anything that would run code. "
            "Rerun the stage that writes it."
        ) from error
