from kedro.pipeline import Pipeline, node, pipeline

from .nodes import score_influence, score_method


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                score_influence,
                ["erm_model", "train_set", "params:influence_scoring", "params:erm_training"],
                "influence_vectors",
                name="score_influence",
            ),
            node(
                score_method,
                ["erm_model", "training_trace", "train_set", "params:influence_scoring", "params:erm_training"],
                ["sample_scores", "scoring_metrics"],
                name="score_samples",
            ),
        ]
    )
