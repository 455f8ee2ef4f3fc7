"""hooks.BatchedMlflowHook: a node's parameters reach MLflow in one batch, as kedro-mlflow would log them."""

from __future__ import annotations

import mlflow
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from dataset_pruning import settings
from dataset_pruning.hooks import BatchedMlflowHook


def test_a_nodes_parameters_are_one_batch_and_a_long_value_keeps_the_strategy(tmp_path, monkeypatch):
    hook = BatchedMlflowHook()
    hook.run_id, hook.flatten, hook.recursive, hook.sep, hook.long_params_strategy = None, True, True, ".", "truncate"
    calls = {"log_param": 0, "log_params": 0}

    def counted(name, real):
        def call(*args):
            calls[name] += 1
            return real(*args)
        return call

    for name in calls:
        monkeypatch.setattr(mlflow, name, counted(name, getattr(mlflow, name)))
    long = "x" * (MAX_PARAM_VAL_LENGTH + 10)
    inputs = {"params:block": {"ratio": 0.3, "inner": {"solver": "hybrid", "notes": long}}, "train_set": object()}
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run(experiment_id=mlflow.create_experiment("params")) as run:  # not an earlier test's id
        hook.before_node_run(node=None, catalog=None, inputs=inputs, is_async=False)
    params = mlflow.get_run(run.info.run_id).data.params
    assert params == {"block.ratio": "0.3", "block.inner.solver": "hybrid",
                      "block.inner.notes": long[:MAX_PARAM_VAL_LENGTH]}
    assert calls == {"log_params": 1, "log_param": 1}  # the short ones in one batch; the long one truncated alone


def test_the_project_registers_it_in_place_of_the_plugins_hook():
    assert isinstance(settings.HOOKS[-1], BatchedMlflowHook) and settings.DISABLE_HOOKS_FOR_PLUGINS == ("kedro_mlflow",)
