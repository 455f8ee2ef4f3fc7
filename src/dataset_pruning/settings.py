"""Kedro settings: the project's hooks (hooks.py, run_report.py; kedro-mlflow registers its own hook by entry
point)."""

from dataset_pruning.config_loader import ProjectConfigLoader
from dataset_pruning.hooks import RunIsolation, RunTracking, ValidateParameters
from dataset_pruning.run_report import RunReport

HOOKS = (ValidateParameters(), RunIsolation(), RunTracking(), RunReport())
CONFIG_LOADER_CLASS = ProjectConfigLoader  # OmegaConfigLoader + influence_scoring.method: recommended resolved
# Parameters merge key by key ("soft"): with the default ("destructive"), an environment with parameter files (e.g.
# --env=fashion_mnist) plus --params sweep.preset=x replaced base's whole sweep block by {preset: x}.
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local", "merge_strategy": {"parameters": "soft"}}
