"""Forgetting events (Toneva et al., ICLR 2019): how often a sample goes from learned to forgotten in training.

A forgetting event is a 1 -> 0 transition of a sample's training-pass correctness between two consecutive
presentations (the prediction in the forward pass of its minibatch, before the update). Samples never
classified correctly get the maximum score, E (the number of presentations), above any count a learned sample
can reach. The least-forgotten samples are removed first: the HIGHEST scores are kept. Cost: none beyond ERM with
``erm_training.trace.dynamics: true``. Reference: mtoneva/example_forgetting.
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.trace import require_trace


def forgetting_counts(correct: torch.Tensor) -> torch.Tensor:
    """correct : bool Tensor of shape (presentations, n) -> forgetting events per sample, shape (n,), float32.

    Never-learned samples (no correct presentation) get ``presentations``.
    """
    if correct.ndim != 2:
        raise ValueError(f"correct must have shape (presentations, n), got {tuple(correct.shape)}")
    correct = correct.bool()
    events = (correct[:-1] & ~correct[1:]).sum(0).float()
    never_learned = ~correct.any(0)
    return torch.where(never_learned, torch.tensor(float(correct.shape[0])), events)


@scorer("forgetting", output="scalar", needs=("dynamics",))
def forgetting(model: torch.nn.Module, train: TensorData, *, trace=None) -> SampleScores:
    """scores : Tensor of shape (n_samples,), forgetting events from the ERM trace; keep highest."""
    trace = require_trace(trace, "dynamics", "forgetting", "correct")
    if trace.n_samples != len(train):
        raise ValueError(f"the training trace has {trace.n_samples} samples but train has {len(train)}")
    return SampleScores(forgetting_counts(trace.correct), method="forgetting", keep="highest")


__all__ = ["forgetting", "forgetting_counts"]
