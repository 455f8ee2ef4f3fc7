from kedro.pipeline import Pipeline, node, pipeline

from .nodes import write_report


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [node(write_report, ["sweep_runs", "params:report"], ["results_page", "results_figures"], name="write_report")]
    )
