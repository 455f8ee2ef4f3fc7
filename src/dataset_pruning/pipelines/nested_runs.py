"""A versioned table whose rows are also logged as nested MLflow runs (one per row) under the active run.

The NAS search logs each architecture's result this way: nodes return a plain table and never import MLflow;
this dataset saves it (CSV, versioned, logged as an artifact like ``MlflowVersionedArtifactDataset``) and, only
when a run is active (kedro-mlflow opens one per ``kedro run``), creates one child run per row, named by
``run_name_column``, with ``param_columns`` as parameters, ``tag_columns`` as tags (strings; empty values left
out) and every other numeric column as metrics.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
from kedro.io import Version

from dataset_pruning.pipelines.artifacts import MlflowVersionedArtifactDataset


class MlflowNestedRunsDataset(MlflowVersionedArtifactDataset):
    def __init__(
        self,
        *,
        dataset: dict[str, Any],
        run_name_column: str,
        param_columns: list[str] | None = None,
        tag_columns: list[str] | None = None,
        version: Version | None = None,
        artifact_path: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(dataset=dataset, version=version, artifact_path=artifact_path, metadata=metadata)
        self._run_name_column = run_name_column
        self._param_columns = list(param_columns or [])
        self._tag_columns = list(tag_columns or [])

    def _save(self, data: pd.DataFrame) -> None:
        named = [self._run_name_column, *self._param_columns, *self._tag_columns]
        missing = [c for c in named if c not in data.columns]
        if missing:
            raise ValueError(f"the table lacks the columns {missing} named in its catalog entry (conf/base/catalog_*.yml)")
        super()._save(data)
        import mlflow

        parent = mlflow.active_run()
        if parent is None:
            return
        client = mlflow.MlflowClient()
        metric_columns = [c for c in data.select_dtypes("number").columns if c not in named]
        now = int(time.time() * 1000)
        for _, row in data.iterrows():
            tags = {c: str(row[c]) for c in self._tag_columns if not _missing(row[c])}
            child = client.create_run(
                parent.info.experiment_id,
                run_name=str(row[self._run_name_column]),
                tags={"mlflow.parentRunId": parent.info.run_id, **tags},
            )
            params = [mlflow.entities.Param(c, str(row[c])) for c in self._param_columns]
            metrics = [
                mlflow.entities.Metric(c, float(row[c]), now, 0)
                for c in metric_columns
                if not _missing(row[c])
            ]
            client.log_batch(child.info.run_id, metrics=metrics, params=params)
            client.set_terminated(child.info.run_id)

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "run_name_column": self._run_name_column, "param_columns": self._param_columns,
                "tag_columns": self._tag_columns}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
