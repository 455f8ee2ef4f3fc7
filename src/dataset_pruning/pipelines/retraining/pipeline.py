from kedro.pipeline import Pipeline, node, pipeline

from .nodes import measure_pruning, retrain


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                retrain,
                ["train_set", "removed_indices", "params:retraining", "params:erm_training"],
                "retrained_model",
                name="retrain",
            ),
            node(
                measure_pruning,
                ["erm_model", "retrained_model", "train_set", "test_set", "influence_vectors", "removed_indices",
                 "parameters"],
                ["pruning_metrics", "pruning_metrics_tracking", "pruning_plot", "index_sets"],
                name="measure_pruning",
            ),
        ]
    )
