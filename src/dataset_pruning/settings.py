"""Kedro settings: the project's hooks (hooks.py, run_report.py) and kedro-mlflow's, as hooks.BatchedMlflowHook in
place of the instance the plugin registers by entry point (last, so it runs first, as a plugin's hook does)."""

from dataset_pruning.config_loader import ProjectConfigLoader
from dataset_pruning.hooks import BatchedMlflowHook, RunIsolation, RunTracking, ValidateParameters
from dataset_pruning.run_report import RunReport

HOOKS = (ValidateParameters(), RunIsolation(), RunTracking(), RunReport(), BatchedMlflowHook())
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its distribution name
CONFIG_LOADER_CLASS = ProjectConfigLoader  # OmegaConfigLoader + influence_scoring.method: recommended resolved
# Parameters merge key by key ("soft"): with the default ("destructive"), an environment with parameter files (e.g.
# --env=fashion_mnist) plus --params sweep.preset=x replaced base's whole sweep block by {preset: x}.
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local", "merge_strategy": {"parameters": "soft"}}
