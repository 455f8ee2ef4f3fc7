"""The nas_proxy_eval pipeline: nodes on an in-memory catalog, the nested-run table dataset, and a `kedro run`
of the real project with MLflow tracking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, DatasetError, MemoryDataset, Version
from kedro.io.core import generate_timestamp
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from dataset_pruning.data import TensorData
from dataset_pruning.pipelines import nas_proxy_eval
from dataset_pruning.catalog.nested_runs import MlflowNestedRunsDataset
from dataset_pruning.catalog.storage import TensorStoreDataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "sample_size": 3,
    "width_scale": 0.125,
    "executor": "serial",
    "top_k": 2,
    "training": {"epochs": 1, "batch_size": 16, "lr": 0.05, "device": "cpu"},
}


def _data(n: int, seed: int) -> TensorData:
    y = torch.arange(n) % 4
    x = torch.randn(n, 40, generator=torch.Generator().manual_seed(seed)) + y[:, None].float()
    return TensorData(x, y, 4, f"tiny-{seed}")


def test_pipeline_on_an_in_memory_catalog():
    catalog = DataCatalog(
        {
            "train_set": MemoryDataset(_data(48, 0)),
            "test_set": MemoryDataset(_data(16, 1)),
            "removed_indices": MemoryDataset(list(range(0, 48, 3))),
            "params:nas_proxy_eval": MemoryDataset(TINY),
        }
    )
    outputs = {name: dataset.load() for name, dataset in
               SequentialRunner().run(nas_proxy_eval.create_pipeline(), catalog).items()}
    summary = outputs["nas_summary"]
    assert summary["architectures"] == 3 and summary["full.train_samples"] == 48
    assert summary["pruned.train_samples"] == summary["random.train_samples"] == 32
    assert {"pruned.spearman", "random.spearman_top2", "random.time_ratio"} <= set(summary)
    assert outputs["nas_metrics"]["random.time_ratio"] == {"value": summary["random.time_ratio"], "step": 0}
    assert isinstance(outputs["nas_plot"], Figure)


def test_invalid_parameters_stop_the_node():
    with pytest.raises(ValueError, match="sample_size"):
        nas_proxy_eval.nodes.search_architectures(_data(8, 0), _data(4, 1), [], {**TINY, "sample_size": 0})


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {"architecture": ["a", "b"], "width": [32, 64], "activation": ["relu", "sigmoid"], "full_test_accuracy":
         [0.5, float("nan")], "full_train_time_s": [1.0, 2.0]}
    )


def _nested_dataset(tmp_path: Path) -> MlflowNestedRunsDataset:
    return MlflowNestedRunsDataset(
        dataset={"type": "pandas.CSVDataset", "filepath": str(tmp_path / "table.csv"), "save_args": {"index": False}},
        run_name_column="architecture",
        param_columns=["width", "activation"],
    )


def test_nested_runs_dataset_without_active_run_only_saves(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no MLflow call may happen without an active run")

    monkeypatch.setattr(mlflow, "MlflowClient", refuse)
    dataset = _nested_dataset(tmp_path)
    dataset.save(_table())
    assert dataset.load()["architecture"].tolist() == ["a", "b"]
    with pytest.raises(DatasetError, match="lacks the columns"):
        _nested_dataset(tmp_path).save(_table().drop(columns=["width"]))


def test_nested_runs_dataset_logs_one_child_run_per_row(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # an experiment of this store: a run of another test in this process may have left its own active
        experiment = mlflow.set_experiment("nested_runs_test")
        with mlflow.start_run(experiment_id=experiment.experiment_id) as parent:
            _nested_dataset(tmp_path).save(_table())
        runs = mlflow.search_runs(experiment_ids=[parent.info.experiment_id])
    finally:
        mlflow.set_tracking_uri(None)
    children = runs[runs["tags.mlflow.parentRunId"] == parent.info.run_id].sort_values("tags.mlflow.runName")
    assert children["tags.mlflow.runName"].tolist() == ["a", "b"]
    assert children["params.width"].tolist() == ["32", "64"]
    assert children["params.activation"].tolist() == ["relu", "sigmoid"]
    assert children["metrics.full_train_time_s"].tolist() == [1.0, 2.0]
    assert children["metrics.full_test_accuracy"].iloc[0] == 0.5 and pd.isna(children["metrics.full_test_accuracy"].iloc[1])
    assert (children["status"] == "FINISHED").all()


def _latest(path: Path) -> Path:
    return sorted(path.iterdir())[-1] / path.name


RUN = """
import json, sys
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
root, pipeline, params, pins = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
bootstrap_project(root)
with KedroSession.create(project_path=root, runtime_params=params) as session:
    session.run(pipeline_name=pipeline, load_versions=pins)
"""


@pytest.mark.slow  # a `kedro run` of the real project in its own process, with MLflow (~25 s)
def test_nas_pipeline_end_to_end_with_mlflow(kedro_project):
    """`kedro run --pipeline=nas_proxy_eval` on the prune pipeline's outputs, written here in the catalog's layout
    (train_set, test_set tensor files; removed_indices a versioned JSON list): the table, summary, plot, the summary as
    MLflow metrics of the run and one nested run per architecture."""
    data = kedro_project / "data"
    version = generate_timestamp()
    for name, split in (("train_set", _data(48, 0)), ("test_set", _data(16, 1))):
        path = data / "02_intermediate" / f"{name}.pt"
        TensorStoreDataset(filepath=str(path), version=Version(None, version)).save(split)
    removed_path = data / "07_model_output" / "removed_indices.json" / version / "removed_indices.json"
    removed_path.parent.mkdir(parents=True)
    removed_path.write_text(json.dumps(list(range(0, 48, 4))))
    runtime = json.dumps({"nas_proxy_eval": TINY, "data_root": str(data)})
    pins = json.dumps(dict.fromkeys(("train_set", "test_set", "removed_indices"), version))  # written by no run
    subprocess.run([sys.executable, "-c", RUN, str(PROJECT_ROOT), "nas_proxy_eval", runtime, pins], check=True,
                   cwd=kedro_project, capture_output=True)

    removed = json.loads(_latest(data / "07_model_output" / "removed_indices.json").read_text())
    table = pd.read_csv(_latest(data / "08_reporting" / "nas_results.csv"))
    summary = json.loads(_latest(data / "08_reporting" / "nas_summary.json").read_text())
    assert len(table) == 3
    assert (table["full_train_samples"] - table["pruned_train_samples"] == len(removed)).all()
    assert _latest(data / "08_reporting" / "nas_plot.png").stat().st_size > 0

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=["dataset_pruning"])
    finally:
        mlflow.set_tracking_uri(None)
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1 and parents["tags.mlflow.runName"].iloc[0].startswith("nas_proxy_eval·")
    nas_run = parents.iloc[0]
    assert nas_run["tags.input.removed_indices.version"] == version  # says which version it read
    assert nas_run["metrics.nas.pruned.time_ratio"] == pytest.approx(summary["pruned.time_ratio"])
    assert nas_run["metrics.nas.architectures"] == 3
    children = runs[runs["tags.mlflow.parentRunId"] == nas_run["run_id"]]
    assert sorted(children["tags.mlflow.runName"]) == sorted(table["architecture"])
    assert set(children["params.normalization"]) == set(table["normalization"])
    assert children["metrics.full_test_accuracy"].notna().all()
