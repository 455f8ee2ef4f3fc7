"""A versioned table whose rows are also logged as nested MLflow runs (one per row) under the active run.

The NAS search logs each architecture's result this way: nodes return a plain table and never import MLflow;
this dataset saves it (CSV, versioned, logged as an artifact like ``MlflowVersionedArtifactDataset``) and, only
when a run is active (kedro-mlflow opens one per ``kedro run``), creates one child run per row, named by
``run_name_column``, with ``param_columns`` as parameters, ``tag_columns`` as tags (strings; empty values left
out) and every other numeric column as metrics. ``MlflowNestedRunLogger`` logs rows one by one while a node runs
(the sweep's cells as they finish); the table's save then logs only the rows not logged yet.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError, Version

from dataset_pruning.catalog.artifacts import MlflowVersionedArtifactDataset


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
        self._columns = _Columns(run_name_column, list(param_columns or []), list(tag_columns or []))

    def _save(self, data: pd.DataFrame) -> None:
        missing = [c for c in self._columns.named() if c not in data.columns]
        if missing:
            raise ValueError(f"the table lacks the columns {missing} named in its catalog entry (conf/base/catalog_*.yml)")
        super()._save(data)
        import mlflow

        parent = mlflow.active_run()
        if parent is None:
            return
        logged = _children(parent)  # rows a MlflowNestedRunLogger logged while the node ran
        for _, row in data.iterrows():
            if str(row[self._columns.run_name]) not in logged:
                self._columns.log(parent, row.to_dict())

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), **vars(self._columns)}


class MlflowNestedRunLogger(AbstractDataset):
    """An input whose value is a function ``log(row: dict)``: it logs one row as a nested run of the active MLflow
    run at once (nothing without an active run), so a long node (the sweep) shows each result as it comes. Rows
    logged this way are not logged again when the node's table is saved through ``MlflowNestedRunsDataset``."""

    def __init__(self, *, run_name_column: str, param_columns: list[str] | None = None,
                 tag_columns: list[str] | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._columns = _Columns(run_name_column, list(param_columns or []), list(tag_columns or []))
        self.metadata = metadata

    def _load(self) -> Callable[[dict[str, Any]], None]:
        def log(row: dict[str, Any]) -> None:
            import mlflow

            parent = mlflow.active_run()
            if parent is not None:
                self._columns.log(parent, row)

        return log

    def _save(self, data: Any) -> None:
        raise DatasetError("MlflowNestedRunLogger is an input only")

    def _describe(self) -> dict[str, Any]:
        return vars(self._columns)


class _Columns:
    """Which columns of a row name the child run, and which are its parameters and tags; numbers are metrics."""

    def __init__(self, run_name: str, params: list[str], tags: list[str]) -> None:
        self.run_name, self.params, self.tags = run_name, params, tags

    def named(self) -> list[str]:
        return [self.run_name, *self.params, *self.tags]

    def log(self, parent, row: dict[str, Any]) -> None:
        import mlflow

        client = mlflow.MlflowClient()
        tags = {c: str(row[c]) for c in self.tags if c in row and not _missing(row[c])}
        child = client.create_run(parent.info.experiment_id, run_name=str(row[self.run_name]),
                                  tags={"mlflow.parentRunId": parent.info.run_id, **tags})
        now = int(time.time() * 1000)
        named = set(self.named())
        metrics = [mlflow.entities.Metric(c, float(v), now, 0) for c, v in row.items()
                   if c not in named and _number(v) and not _missing(v)]
        params = [mlflow.entities.Param(c, str(row[c])) for c in self.params if c in row]
        client.log_batch(child.info.run_id, metrics=metrics, params=params)
        client.set_terminated(child.info.run_id)


def _children(parent) -> set[str]:
    """Names of the nested runs already under ``parent``."""
    import mlflow

    runs = mlflow.MlflowClient().search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        max_results=50000)
    return {run.info.run_name for run in runs}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
