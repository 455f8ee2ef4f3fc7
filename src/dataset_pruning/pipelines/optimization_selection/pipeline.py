from kedro.pipeline import Pipeline, node, pipeline

from .nodes import select_samples


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                select_samples,
                ["influence_vectors", "train_set", "params:optimization_selection", "sample_scores"],
                ["removed_indices", "selection_metrics"],
                name="select_samples",
            )
        ]
    )
