"""Shared fixtures: a throw-away copy of the Kedro project and a tiny prune configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# pytest-xdist (addopts: -n auto) runs one worker per core: each takes its share of the cores for torch, and the
# `kedro run` subprocesses it starts inherit that share, so workers do not oversubscribe the machine.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    import torch

    _threads = max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(_threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (stable otherwise), so the long ones start early and the short ones fill the end
    (xdist's work stealing moves pending short ones to the idle worker), instead of one worker ending on a long one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
