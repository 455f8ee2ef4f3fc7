"""Catalog datasets whose files cannot run code when loaded (no pickles).

- ``TensorStoreDataset``: models, data splits, the training trace and sample scores, through
  ``tensor_files.save_tensors`` / ``load_tensors`` (``torch.load(weights_only=True)``).
- ``NpyDataset``: the (n, d) influence matrix as ``.npy``, read with ``allow_pickle=False``.
- ``IndexSetsDataset``: named index sets (kept, removed) as ``<name>.csv`` (one ``index`` column) and
  ``<name>.npy`` in one version folder, for tools outside the project.

Both write to a temporary file beside the target and rename it, so a failed or interrupted save never leaves
half a file where a later run would read it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from kedro.io import AbstractVersionedDataset, Version

from dataset_pruning.tensor_files import load_tensors, save_array, save_tensors, write_atomically


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
        return load_tensors(self._get_load_path())

    def _save(self, data: Any) -> None:
        save_tensors(data, self._get_save_path())


class NpyDataset(_LocalVersionedDataset):
    """One ndarray as ``.npy`` (``np.load(allow_pickle=False)``: object arrays are refused)."""

    def _load(self) -> np.ndarray:
        return np.load(Path(self._get_load_path()), allow_pickle=False)

    def _save(self, data: np.ndarray) -> None:
        save_array(data, self._get_save_path())


class IndexSetsDataset(_LocalVersionedDataset):
    """{name: int64 indices} saved as ``<version>/<name>.csv`` and ``<version>/<name>.npy``; loads the .npy files.
    ``filepath`` names the version folder's parent (e.g. data/07_model_output/index_sets)."""

    def _load(self) -> dict[str, np.ndarray]:
        folder = Path(self._get_load_path())
        return {path.stem: np.load(path, allow_pickle=False) for path in sorted(folder.glob("*.npy"))}

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
