from kedro.pipeline import Pipeline, node, pipeline

from .nodes import load_splits


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [node(load_splits, "params:ingest", ["train_set", "test_set"], name="load_splits")]
    )
