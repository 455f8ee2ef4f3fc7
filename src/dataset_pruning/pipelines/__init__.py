"""The Kedro pipelines, one folder per stage; nodes call the library and return plain values."""

from __future__ import annotations

from typing import Any


def tracked(figures: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``figures`` as kedro-mlflow's metrics (``MlflowMetricsHistoryDataset``): {name: {"value": float, "step": 0}}."""
    return {key: {"value": float(value), "step": 0} for key, value in figures.items()}
