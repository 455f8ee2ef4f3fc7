from kedro.pipeline import Pipeline, node, pipeline

from .nodes import search_architectures, summarise_search


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                search_architectures,
                ["train_set", "test_set", "removed_indices", "params:nas_proxy_eval"],
                "nas_results",
                name="search_architectures",
            ),
            node(
                summarise_search,
                ["nas_results", "params:nas_proxy_eval"],
                ["nas_summary", "nas_metrics", "nas_plot"],
                name="summarise_search",
            ),
        ]
    )
