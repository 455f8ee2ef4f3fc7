"""Kedro settings: the project's hooks (hooks.py; kedro-mlflow registers its own hook by entry point)."""

from kedro.config import OmegaConfigLoader

from dataset_pruning.hooks import RunIsolation, RunTracking, ValidateParameters

HOOKS = (ValidateParameters(), RunIsolation(), RunTracking())
CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
