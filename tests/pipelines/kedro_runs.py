"""Runs of the real Kedro project for the pipeline tests (imported by them; pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import mlflow
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import Version

from dataset_pruning.catalog.storage import TensorStoreDataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def latest(path):
    """The file inside the newest version folder of a versioned dataset."""
    versions = sorted(p for p in path.iterdir())
    return versions[-1] / path.name


def load_latest(path):
    return TensorStoreDataset(filepath=str(path), version=Version(None, None)).load()


def run(workdir, params, pipeline="prune", hooks=(), **run_args):
    """Run ``pipeline`` of the real project with outputs written under ``workdir`` (the working directory);
    ``hooks`` are registered for this session only, ``run_args`` go to ``KedroSession.run``."""
    assert Path.cwd() == workdir
    bootstrap_project(PROJECT_ROOT)
    # mlflow caches its sqlite store by URI, so each test's store gets its own absolute path
    params = {"data_root": str(workdir / "data"), "mlflow_db": str(workdir / "mlflow.db"), **params}
    try:
        with KedroSession.create(project_path=PROJECT_ROOT, runtime_params=params) as session:
            for hook in hooks:
                session._hook_manager.register(hook)
            session.run(pipeline_name=pipeline, **run_args)
    finally:
        # kedro-mlflow re-opens its run in every node and leaves it active in this process: close it, as the end
        # of a `kedro run` process would, or the next session in this process would log into the same run.
        while mlflow.active_run() is not None:
            mlflow.end_run()
