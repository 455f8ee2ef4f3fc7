from kedro.pipeline import Pipeline, node, pipeline

from .nodes import evaluate_nas_proxy


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                evaluate_nas_proxy,
                ["train_set", "test_set", "removed_indices", "params:nas_proxy_eval"],
                "nas_summary",
                name="evaluate_nas_proxy",
            )
        ]
    )
