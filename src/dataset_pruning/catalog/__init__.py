"""The Kedro catalog's own dataset classes (named by ``type:`` in conf/base/catalog*.yml).

- ``storage``: files that cannot run code when loaded (``TensorStoreDataset``, ``NpyDataset``, ``IndexSetsDataset``).
- ``artifacts``: versioned files also logged to the active MLflow run, the report's pages and figures, the sweep's
  cells.
- ``nested_runs``: versioned tables whose rows are also logged as nested MLflow runs.

This package imports nothing from ``dataset_pruning.pipelines``: the pipelines and conf depend on it, not back.
"""
