"""CIFAR-10 and CIFAR-100 from the standard python pickle batches (Krizhevsky, 2009).

The pickles are read directly: torchvision's classes check md5 sums of the archives, which test fixtures in the
same format cannot match. Each batch is a dict with ``data``, uint8 of shape (n, 3072) whose rows are the 1024 red,
then green, then blue values of a 32x32 image in row-major order, and one int label per row.

The files are Python pickles, and ``pickle.load`` runs whatever callable a file names. They are read by
``CifarUnpickler`` instead, which admits only what the format holds (dicts, lists, tuples, bytes, str, numbers and
numpy arrays, dtypes and scalars) and refuses any other global before it is called.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset_pruning.data.base import DATASETS, TensorData, missing_data_error
from dataset_pruning.data.images import normalize_channels, to_unit_range

# The usual per-channel statistics of the training splits, in [0, 1] units.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
CIFAR10_LAYOUT = """\
{root}/
  cifar-10-batches-py/
    batches.meta
    data_batch_1
    data_batch_2
    data_batch_3
    data_batch_4
    data_batch_5
    test_batch
(extract cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into {root})"""
CIFAR100_LAYOUT = """\
{root}/
  cifar-100-python/
    meta
    train
    test
(extract cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into {root})"""


# The only globals a CIFAR pickle names: numpy's reconstructors of an ndarray, a dtype and a scalar (under numpy 1's
# ``numpy.core`` and numpy 2's ``numpy._core`` paths; ``_frombuffer`` is the ndarray reconstructor of pickle
# protocol 5), and the bytes constructors of Python 3 pickles with protocol < 3 (``_codecs.encode`` for non-empty
# bytes, ``bytes()`` for empty ones; protocol-2 pickles name builtins ``__builtin__``). Dicts, lists, tuples, str,
# bytes and numbers have their own opcodes and need no global.
_NUMPY_GLOBALS = {
    "multiarray": ("_reconstruct", "scalar"),
    "numeric": ("_frombuffer",),
}
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("builtins", "bytes"), ("__builtin__", "bytes")}
    | {
        (f"{package}.{module}", function)
        for package in ("numpy.core", "numpy._core")
        for module, functions in _NUMPY_GLOBALS.items()
        for function in functions
    }
)


class RefusedGlobalError(ValueError):
    """A pickle names a global that a CIFAR batch never holds (it would be called while unpickling)."""


class CifarUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only ``ALLOWED_GLOBALS``; any other global raises ``RefusedGlobalError``
    before it can be called, wherever it sits in the file."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")  # Python 2 str loads as bytes, as the keys of the real files
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobalError(
                f"{self._path} asks to load {module}.{name}, which a CIFAR batch never holds; refusing to unpickle "
                f"it (replace the file with the original from the archive)"
            )
        if module.startswith("numpy.core"):
            # numpy 2 keeps numpy.core only as a deprecated alias of numpy._core; numpy 1 has no numpy._core.
            try:
                return getattr(importlib.import_module("numpy._core" + module[len("numpy.core"):]), name)
            except ImportError:
                pass
        return super().find_class(module, name)


def _read_pickle(path: Path, name: str, layout: str) -> dict[str, Any]:
    """One CIFAR pickle as a dict with str keys (the files were written by Python 2, so keys load as bytes).

    Read by ``CifarUnpickler``: a file that names any global besides numpy's array reconstructors is refused.
    """
    if not path.is_file():
        raise missing_data_error(name, path, layout)
    try:
        with path.open("rb") as handle:
            content = CifarUnpickler(handle, path).load()
    except RefusedGlobalError:
        raise
    except Exception as error:  # truncated or foreign files raise many different exception types
        raise ValueError(
            f"{path} is not a readable CIFAR python pickle ({type(error).__name__}: {error}); "
            f"extract the archive again"
        ) from error
    if not isinstance(content, dict):
        raise ValueError(
            f"{path} holds a {type(content).__name__}, not the dict of a CIFAR batch; extract the archive again"
        )
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}


def _entry(content: dict[str, Any], key: str, path: Path) -> Any:
    if key not in content:
        raise ValueError(f"{path} has no {key!r} entry (it has {sorted(content)}); is it the right file?")
    return content[key]


def _batch(path: Path, label_key: str, name: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n, 3, 32, 32) uint8 and labels (n,) int64 of one batch file."""
    content = _read_pickle(path, name, layout)
    data = np.asarray(_entry(content, "data", path))
    labels = np.asarray(_entry(content, label_key, path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: 'data' must be uint8 of shape (n, 3072) (32x32 RGB rows), got {data.dtype} of shape "
            f"{data.shape}; extract the archive again"
        )
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: {label_key!r} must hold one integer label per row of 'data' ({len(data)}), got "
            f"{labels.dtype} of shape {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _class_count(path: Path, key: str, name: str, layout: str) -> int:
    names = _entry(_read_pickle(path, name, layout), key, path)
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"{path}: {key!r} must be a non-empty list of class names")
    return len(names)


def _splits(
    name: str,
    prefix: str,
    batches: dict[str, list[Path]],
    label_key: str,
    num_classes: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    normalize: bool,
    layout: str,
) -> tuple[TensorData, TensorData]:
    out = []
    for split, paths in batches.items():
        parts = [_batch(path, label_key, name, layout) for path in paths]
        pixels = np.concatenate([p for p, _ in parts])
        labels = np.concatenate([y for _, y in parts])
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"{name} {split}: labels must lie in [0, {num_classes}) (the number of class names in the meta "
                f"file), found [{labels.min()}, {labels.max()}]"
            )
        x = normalize_channels(pixels, mean, std) if normalize else to_unit_range(pixels)
        out.append(TensorData(x, torch.from_numpy(labels), num_classes, f"{prefix}-{split}"))
    return out[0], out[1]


@DATASETS.register("cifar10")
def load_cifar10(root: Path, seed: int = 0, normalize: bool = True) -> tuple[TensorData, TensorData]:
    """50,000 train / 10,000 test images, x of shape (n, 3, 32, 32) normalised per channel, 10 classes.

    ``normalize: false`` gives pixels in [0, 1] instead. ``seed`` is unused (the split is fixed by the files).
    """
    directory = Path(root) / CIFAR10_DIR
    layout = CIFAR10_LAYOUT.format(root=Path(root))
    if not directory.is_dir():
        raise missing_data_error("cifar10", directory, layout)
    num_classes = _class_count(directory / "batches.meta", "label_names", "cifar10", layout)
    batches = {
        "train": [directory / f"data_batch_{i}" for i in range(1, 6)],
        "test": [directory / "test_batch"],
    }
    return _splits("cifar10", "cifar10", batches, "labels", num_classes, CIFAR10_MEAN, CIFAR10_STD, normalize, layout)


@DATASETS.register("cifar100")
def load_cifar100(
    root: Path, seed: int = 0, label_type: str = "fine", normalize: bool = True
) -> tuple[TensorData, TensorData]:
    """50,000 train / 10,000 test images, x of shape (n, 3, 32, 32) normalised per channel; 100 fine classes,
    or the 20 superclasses with ``label_type: coarse``. ``seed`` is unused (the split is fixed by the files)."""
    if label_type not in ("fine", "coarse"):
        raise ValueError(f"cifar100: label_type must be 'fine' (100 classes) or 'coarse' (20), got {label_type!r}")
    directory = Path(root) / CIFAR100_DIR
    layout = CIFAR100_LAYOUT.format(root=Path(root))
    if not directory.is_dir():
        raise missing_data_error("cifar100", directory, layout)
    num_classes = _class_count(directory / "meta", f"{label_type}_label_names", "cifar100", layout)
    batches = {"train": [directory / "train"], "test": [directory / "test"]}
    prefix = "cifar100" if label_type == "fine" else "cifar100-coarse"
    return _splits(
        "cifar100", prefix, batches, f"{label_type}_labels", num_classes, CIFAR100_MEAN, CIFAR100_STD, normalize, layout
    )
