"""Scoring methods, one module each, behind one registry ``SCORERS`` and ``score_samples(name, ...)``."""

from dataset_pruning.scoring import influence  # noqa: F401  (registration)
from dataset_pruning.scoring.base import SCORERS, SampleScores, score_samples

__all__ = ["SCORERS", "SampleScores", "score_samples"]
