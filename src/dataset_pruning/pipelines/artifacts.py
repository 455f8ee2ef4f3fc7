"""A versioned catalog entry that is also logged to the active MLflow run.

kedro-mlflow 2.0.3's ``MlflowArtifactDataset`` builds its wrapped dataset without the catalog's save version, so
with Kedro 1.7 a versioned wrapped dataset fails (``VersionAlreadyExistsError``). This wrapper passes the
catalog's version through, saves as the wrapped dataset does, then logs the saved file as an artifact when an
MLflow run is active (kedro-mlflow opens one per ``kedro run``); with no active run it logs nothing.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset, Version
from kedro.io.core import parse_dataset_definition


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
        return self._dataset.load()

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
