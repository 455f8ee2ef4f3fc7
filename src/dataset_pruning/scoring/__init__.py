"""Scoring methods, one module each, behind one registry ``SCORERS`` and ``score_samples(name, ...)``."""

from dataset_pruning.scoring import (  # noqa: F401  (registration)
    aum,
    d2,
    dual,
    dynamic_uncertainty,
    el2n,
    forgetting,
    grand,
    held_out,
    herding,
    influence,
    influence_norm,
    large_head,
    last_layer,
    moso,
    random_score,
    sgd_influence,
    tdds,
    whole_network,
)
from dataset_pruning.scoring.base import (
    SCORERS,
    SampleScores,
    run_options,
    score_samples,
    scorer_needs,
    scorer_options,
    scorer_output,
    trace_options,
)
from dataset_pruning.scoring.extrapolation import ExtrapolationConfig, extrapolate, extrapolate_scores
from dataset_pruning.scoring.trace import TraceRecorder, TrainingTrace

__all__ = [
    "ExtrapolationConfig",
    "SCORERS",
    "SampleScores",
    "run_options",
    "TraceRecorder",
    "TrainingTrace",
    "extrapolate",
    "extrapolate_scores",
    "score_samples",
    "scorer_needs",
    "scorer_options",
    "scorer_output",
    "trace_options",
]
