"""Shared fixtures: a throw-away copy of the Kedro project and a tiny prune configuration."""

from __future__ import annotations

from pathlib import Path

import pytest




@pytest.fixture
def tiny_prune_params() -> dict:
    """Runtime parameters small enough to run the whole prune pipeline in seconds on 2 CPU cores."""
    return {
        "ingest": {"options": {"num_samples": 600}},
        "erm_training": {"model": {"name": "mlp"}, "training": {"epochs": 3}},
        "optimization_selection": {"ratio": 0.3},
    }


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory for a run of the real project (conf/, src/): the MLflow store (sqlite:///mlflow.db)
    resolves against it, and runs get ``data_root`` = tmp_path/data so every catalog output lands there too."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
