"""MNIST-1D, regenerated offline from a seed by the ``mnist1d`` package (never its download path).

Generating takes seconds (8-16 s for the default 5000 samples), so the arrays are cached on disk, one ``.npz`` file
per (seed, num_samples, train_split) and per version of ``mnist1d`` and of the numpy and scipy it computes with,
under ``$DATASET_PRUNING_CACHE/mnist1d/`` (default ``~/.cache/dataset_pruning/mnist1d/``). A file is written to a
temporary name in the same folder and then renamed (``os.replace``), so a concurrent process sees either no file or
a whole one; it is read with ``allow_pickle=False``, and one that cannot be read or does not match its key is
generated again. A cache folder that cannot be written only costs the time of generating.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from dataset_pruning.data.base import DATASETS, TensorData

logger = logging.getLogger(__name__)

CACHE_ENV = "DATASET_PRUNING_CACHE"
ARRAYS = ("x", "y", "x_test", "y_test")


def cache_root() -> Path:
    """``$DATASET_PRUNING_CACHE`` if set (and not empty), else ``~/.cache/dataset_pruning``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dataset_pruning"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def cache_key(seed: int, num_samples: int, train_split: float) -> dict[str, str | int | float]:
    """Everything the generated arrays depend on: the arguments and the versions of the generating code."""
    return {
        "seed": int(seed),
        "num_samples": int(num_samples),
        "train_split": float(train_split),
        "mnist1d": _version("mnist1d"),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
    }


def cache_path(key: dict[str, str | int | float]) -> Path:
    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = f"seed{key['seed']}-n{key['num_samples']}-split{key['train_split']!r}-{digest}.npz"
    return cache_root() / "mnist1d" / name


def generate(seed: int, num_samples: int, train_split: float) -> dict[str, np.ndarray]:
    """The package's ``make_dataset`` arrays; the global ``random``/``numpy`` RNG states it seeds are restored."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = int(seed)
    args.num_samples = int(num_samples)
    args.train_split = float(train_split)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(args)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return {name: np.asarray(raw[name]) for name in ARRAYS}


def _read_cache(path: Path, key: dict) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the file is missing, unreadable or not the one for ``key``."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {name: content[name] for name in ARRAYS}
            stored_key = json.loads(str(content["key"]))
    except Exception as error:  # truncated, foreign or half-copied files raise many different exception types
        logger.warning("mnist1d cache file %s is unreadable (%s: %s); generating it again", path,
                       type(error).__name__, error)
        return None
    consistent = (
        stored_key == key
        and arrays["x"].ndim == arrays["x_test"].ndim == 2
        and arrays["y"].shape == (len(arrays["x"]),)
        and arrays["y_test"].shape == (len(arrays["x_test"]),)
    )
    if not consistent:
        logger.warning("mnist1d cache file %s does not hold the arrays of %s; generating it again", path, key)
        return None
    return arrays


def _write_cache(path: Path, key: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a temporary file in the same folder, renamed over ``path`` once complete."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            np.savez(file, key=np.array(json.dumps(key, sort_keys=True)), **arrays)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        logger.warning("could not write the mnist1d cache file %s (%s); set %s to a writable folder to skip "
                       "generating it next time", path, error, CACHE_ENV)
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def mnist1d_arrays(seed: int = 42, num_samples: int = 5000, train_split: float = 0.8) -> dict[str, np.ndarray]:
    """x (n_train, 40), y (n_train,), x_test, y_test of ``make_dataset``, from the cache when it has them."""
    key = cache_key(seed, num_samples, train_split)
    path = cache_path(key)
    arrays = _read_cache(path, key)
    if arrays is None:
        arrays = generate(seed, num_samples, train_split)
        _write_cache(path, key, arrays)
    return arrays


@DATASETS.register("mnist1d")
def load_mnist1d(root: Path, seed: int = 42, num_samples: int = 5000, train_split: float = 0.8):
    """4000 train / 1000 test sequences of length 40, 10 classes (the package defaults), x of shape (n, 40).

    ``root`` is unused: the arrays are generated (and cached under ``cache_root()``, see the module docstring).
    """
    raw = mnist1d_arrays(seed, num_samples, train_split)
    train = TensorData(torch.as_tensor(raw["x"]), torch.as_tensor(raw["y"]), 10, "mnist1d-train")
    test = TensorData(torch.as_tensor(raw["x_test"]), torch.as_tensor(raw["y_test"]), 10, "mnist1d-test")
    return train, test
