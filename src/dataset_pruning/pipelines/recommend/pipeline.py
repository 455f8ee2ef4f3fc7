from kedro.pipeline import Pipeline, node, pipeline

from .nodes import recommend_methods, smallest_subset

INPUTS = ["params:sweep", "params:ingest", "params:erm_training", "params:influence_scoring",
          "params:optimization_selection", "params:recommend"]


def create_pipeline(**kwargs) -> Pipeline:
    outputs = ["recommendation", "recommended_subsets", "recommendation_metrics"]
    return pipeline([node(recommend_methods, INPUTS, outputs, name="recommend_methods")])


def create_tolerance_pipeline(**kwargs) -> Pipeline:
    return pipeline([node(smallest_subset, INPUTS, ["tolerance_curve", "tolerance_subset", "tolerance_metrics"],
                          name="smallest_subset")])
