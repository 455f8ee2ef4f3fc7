"""The scorer interface and registry.

A scorer takes the trained model (or a recorded training trace) and the training data and returns
``SampleScores`` aligned with the data set's indices: one influence vector per sample (n, d), which the
optimisation solvers of ``selection`` consume, or one scalar per sample (n,), of which the end named by
``keep`` is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch

from dataset_pruning.registry import Registry


@dataclass
class SampleScores:
    """values : Tensor of shape (n_samples,) or (n_samples, d); keep : which end of a scalar score is kept."""

    values: torch.Tensor
    method: str
    keep: Literal["highest", "lowest"] | None = None

    def __post_init__(self) -> None:
        if self.values.ndim not in (1, 2):
            raise ValueError(f"scores must have shape (n,) or (n, d), got {tuple(self.values.shape)}")
        if not torch.isfinite(self.values).all():
            raise FloatingPointError(
                f"{self.method}: scores contain NaN or infinite values; check the trained model (its loss may "
                "have diverged) or raise the damping"
            )
        if self.values.ndim == 1 and self.keep not in ("highest", "lowest"):
            raise ValueError(f"{self.method}: a scalar score must say which end is kept ('highest' or 'lowest')")

    @property
    def is_vector(self) -> bool:
        return self.values.ndim == 2


Scorer = Callable[..., SampleScores]
SCORERS: Registry[Scorer] = Registry("scoring method")


def score_samples(method: str, model: torch.nn.Module, train: Any, **options: Any) -> SampleScores:
    """Run scoring method ``method`` on ``model`` trained on ``train``."""
    return SCORERS.get(method)(model, train, **options)
