"""Project pipelines: one per stage, and ``prune`` = ingest through retraining (also ``__default__``).

The stages are listed explicitly rather than with ``find_pipelines``: Kedro 1.7's ``find_pipelines`` only
imports the pipelines named on the command line, so it cannot build the composed ``prune`` from its parts.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, pipeline

from dataset_pruning.pipelines import (
    erm_training,
    influence_scoring,
    ingest,
    nas_proxy_eval,
    optimization_selection,
    recommend,
    report,
    retraining,
    sweep,
)

STAGES = {
    "ingest": ingest,
    "erm_training": erm_training,
    "influence_scoring": influence_scoring,
    "optimization_selection": optimization_selection,
    "retraining": retraining,
    "nas_proxy_eval": nas_proxy_eval,
    "sweep": sweep,
    "report": report,
    "recommend": recommend,
}
PRUNE_STAGES = ("ingest", "erm_training", "influence_scoring", "optimization_selection", "retraining")


def register_pipelines() -> dict[str, Pipeline]:
    # Each stage is a namespace (kedro-viz draws it as one collapsible box; nodes are named `<stage>.<node>`);
    # dataset and parameter names stay global so the stages join through the catalog.
    pipelines = {
        name: pipeline(module.create_pipeline(), namespace=name, prefix_datasets_with_namespace=False)
        for name, module in STAGES.items()
    }
    pipelines["tolerance"] = pipeline(recommend.create_tolerance_pipeline(), namespace="tolerance",
                                      prefix_datasets_with_namespace=False)
    pipelines["prune"] = sum((pipelines[name] for name in PRUNE_STAGES), Pipeline([]))
    pipelines["__default__"] = pipelines["prune"]
    return pipelines
