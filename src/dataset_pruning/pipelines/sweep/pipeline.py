from kedro.pipeline import Pipeline, node, pipeline

from .nodes import sweep_cells


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                sweep_cells,
                ["params:sweep", "params:ingest", "params:erm_training", "params:influence_scoring",
                 "params:optimization_selection", "params:recommend", "sweep_progress"],
                ["sweep_results", "sweep_metrics"],
                name="sweep_cells",
            )
        ]
    )
