"""Catalog datasets whose files cannot run code when loaded (no pickles).

- ``TensorStoreDataset``: models, data splits, the training trace and sample scores, through
  ``tensor_files.save_tensors`` / ``load_tensors`` (``torch.load(weights_only=True)``).
- ``NpyDataset``: the (n, d) influence matrix as ``.npy``, read with ``allow_pickle=False``.
- ``IndexSetsDataset``: named index sets (kept, removed) as ``<name>.csv`` (one ``index`` column) and
  ``<name>.npy`` in one version folder, for tools outside the project.

Both write to a temporary file beside the target and rename it, so a failed or interrupted save never leaves
half a file where a later run would read it. A file that cannot be read back (truncated, foreign, NaN in S) is
one message naming its dataset, version and file (``damaged_file``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from kedro.io import AbstractVersionedDataset, Version

from dataset_pruning.runtime import all_finite
from dataset_pruning.tensor_files import load_tensors, save_array, save_tensors, write_atomically


def damaged_file(path: Path, error: BaseException | str) -> ValueError:
    """The message for a stored file that cannot be read back: its dataset and version (from the layout
    ``<dataset>/<version>/<file>``), the file, and what to do."""
    path = Path(path)
    name, version = path.parent.parent.name.split(".")[0], path.parent.name
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {str(error)[:200]}"
    return ValueError(
        f"{name} version {version} is damaged ({path}: {reason}); rerun the stage that writes {name}, or pin "
        f"another version (--load-versions {name}:<version>)"
    )


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
            return load_tensors(path)
        except ValueError as error:
            raise damaged_file(path, error.__cause__ or error) from error

    def _save(self, data: Any) -> None:
        save_tensors(data, self._get_save_path())


class NpyDataset(_LocalVersionedDataset):
    """One ndarray as ``.npy`` (``np.load(allow_pickle=False)``: object arrays are refused); ``mmap: true`` loads
    it memory-mapped read-only, so a large S is paged in as the selection reads it instead of copied up front."""

    def __init__(self, *, filepath: str, mmap: bool = False, version: Version | None = None,
                 metadata: dict[str, Any] | None = None):
        super().__init__(filepath=filepath, version=version, metadata=metadata)
        self._mmap = mmap

    def _load(self) -> np.ndarray:
        """Refuses NaN or infinite floats too: no run writes them (scorers refuse them), so the file is damaged."""
        array = _load_npy(Path(self._get_load_path()), mmap=self._mmap)
        if np.issubdtype(array.dtype, np.floating) and not all_finite(array):
            raise damaged_file(self._get_load_path(), "it holds NaN or infinite values, which no run writes")
        return array

    def _save(self, data: np.ndarray) -> None:
        save_array(data, self._get_save_path())


class IndexSetsDataset(_LocalVersionedDataset):
    """{name: int64 indices} saved as ``<version>/<name>.csv`` and ``<version>/<name>.npy``; loads the .npy files.
    ``filepath`` names the version folder's parent (e.g. data/07_model_output/index_sets)."""

    def _load(self) -> dict[str, np.ndarray]:
        folder = Path(self._get_load_path())
        return {path.stem: _load_npy(path) for path in sorted(folder.glob("*.npy"))}

    def _save(self, data: dict[str, np.ndarray]) -> None:
        folder = Path(self._get_save_path())
        for name, indices in data.items():
            indices = np.asarray(indices, dtype=np.int64)
            save_array(indices, folder / f"{name}.npy")
            text = "index\n" + "".join(f"{i}\n" for i in indices)
            write_atomically(folder / f"{name}.csv", lambda temporary: Path(temporary).write_text(text))

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_dir()
        except Exception:
            return False


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as error:
        raise damaged_file(path, error) from error
