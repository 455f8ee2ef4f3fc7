from kedro.pipeline import Pipeline, node, pipeline

from .nodes import train_erm


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [node(train_erm, ["train_set", "params:erm_training"], ["erm_model", "training_trace"], name="train_erm")]
    )
