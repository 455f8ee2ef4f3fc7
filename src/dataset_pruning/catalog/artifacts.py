"""Catalog entries tied to MLflow: versioned files also logged to the active run, the report's pages and figures,
and the sweep's cells read back from the store.

A versioned catalog entry that is also logged to the active MLflow run:

kedro-mlflow 2.0.3's ``MlflowArtifactDataset`` builds its wrapped dataset without the catalog's save version, so
with Kedro 1.7 a versioned wrapped dataset fails (``VersionAlreadyExistsError``). This wrapper passes the
catalog's version through, saves as the wrapped dataset does, then logs the saved file as an artifact when an
MLflow run is active (kedro-mlflow opens one per ``kedro run``); with no active run it logs nothing.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import parse_dataset_definition

from dataset_pruning.catalog.storage import damaged_file
from dataset_pruning.tensor_files import write_atomically


class MlflowVersionedArtifactDataset(AbstractVersionedDataset):
    def __init__(
        self,
        *,
        dataset: dict[str, Any],
        version: Version | None = None,
        artifact_path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        version = version or Version(None, None)
        dataset_class, args = parse_dataset_definition(
            {**dataset, "versioned": True}, version.load, version.save
        )
        self._dataset = dataset_class(**args)
        self._artifact_path = artifact_path
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(dataset["filepath"]), version=self._dataset._version)

    def _load(self) -> Any:
        try:
            return self._dataset.load()
        except DatasetError as error:
            if isinstance(error.__cause__, (OSError, ValueError)):  # unreadable JSON and the like
                raise damaged_file(self._dataset._get_load_path(), error.__cause__) from error
            raise

    def _save(self, data: Any) -> None:
        self._dataset.save(data)
        import mlflow

        if mlflow.active_run() is not None:
            saved = self._dataset._get_versioned_path(self._dataset.resolve_save_version())
            mlflow.log_artifact(str(saved), self._artifact_path)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe(), "artifact_path": self._artifact_path}


class MlflowCellRunsDataset(AbstractDataset):
    """Read-only: every sweep cell's run in the MLflow store (``mlflow.search_runs``, tag ``cell_key``), newest
    first, as the DataFrame mlflow returns (columns ``tags.*``, ``metrics.*``)."""

    def __init__(self, *, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata

    def _load(self):
        import mlflow

        runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.cell_key LIKE 'cell-%'",
                                  order_by=["attributes.start_time DESC"])
        if runs.empty:
            raise ValueError(
                f"the MLflow store at {mlflow.get_tracking_uri()} holds no sweep cells; run `kedro run "
                "--pipeline=sweep` first (with the same --params mlflow_db=...)"
            )
        return runs

    def _save(self, data) -> None:
        raise NotImplementedError("sweep_runs is read from the MLflow store; the sweep pipeline writes it")

    def _describe(self) -> dict[str, Any]:
        return {}


def _log_artifact(path: str, artifact_path: str | None = None) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(path, artifact_path)


class MlflowLoggedTextDataset(AbstractDataset):
    """A text file (not versioned: docs/results.md is regenerated in place), also logged to the active run."""

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath, self.metadata = Path(filepath), metadata

    def _load(self) -> str:
        return self._filepath.read_text()

    def _save(self, data: str) -> None:
        write_atomically(self._filepath, lambda temporary: Path(temporary).write_text(data))
        _log_artifact(str(self._filepath))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class MlflowLoggedFiguresDataset(AbstractDataset):
    """A dict of matplotlib figures saved as ``<folder>/<name>.png`` (regenerated in place), each also logged to
    the active run under ``figures/``."""

    def __init__(self, *, folder: str, metadata: dict[str, Any] | None = None) -> None:
        self._folder, self.metadata = Path(folder), metadata

    def _load(self) -> dict[str, Path]:
        return {path.stem: path for path in sorted(self._folder.glob("*.png"))}

    def _save(self, figures: dict[str, Any]) -> None:
        import matplotlib.pyplot as plt

        for name, figure in figures.items():
            path = self._folder / f"{name}.png"
            write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))
            plt.close(figure)
            _log_artifact(str(path), "figures")

    def _describe(self) -> dict[str, Any]:
        return {"folder": str(self._folder)}
