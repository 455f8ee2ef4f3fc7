"""Kedro settings: the parameter-validation hook (kedro-mlflow registers its own hook by entry point)."""

from kedro.config import OmegaConfigLoader

from dataset_pruning.hooks import ValidateParameters

HOOKS = (ValidateParameters(),)
CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
