"""The recorded training trace as data (``TrainingTrace``): what ERM kept for the scorers that read the training
trajectory. It lives below both ``scoring`` (``scoring/trace.py`` records it) and ``tensor_files`` (which stores it),
so neither imports the other's package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

PARTS = ("steps", "checkpoints", "dynamics")


@dataclass
class TrainingTrace:
    """A recorded ERM run. Shapes: T steps, E epochs, n samples, C classes, P parameters, K checkpoints.

    step_lrs : Tensor of shape (T,), float64 (always recorded)
    step_parameters : Tensor of shape (T + 1, P), float32 or None; row t is theta before step t
    step_batches : list of T int64 tensors or None
    checkpoints : list of K dicts {epoch, step, lr, state_dict}
    correct : Tensor of shape (E, n), bool, or None (training pass)
    true_probability : Tensor of shape (E, n), float32, or None (clean view, end of epoch)
    probabilities : Tensor of shape (min(E, probability_epochs), n, C), float16, or None (training pass)
    margins : Tensor of shape (E, n), float32, or None (training pass: true-class logit - largest other logit)
    """

    spec: dict[str, Any]
    config: dict[str, Any]
    n_samples: int
    step_lrs: torch.Tensor
    parameter_names: list[str] = field(default_factory=list)
    step_parameters: torch.Tensor | None = None
    step_batches: list[torch.Tensor] | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    correct: torch.Tensor | None = None
    true_probability: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    margins: torch.Tensor | None = None

    @property
    def recorded(self) -> tuple[str, ...]:
        present = {
            "steps": self.step_parameters is not None,
            "checkpoints": bool(self.checkpoints),
            "dynamics": any(
                part is not None
                for part in (self.correct, self.true_probability, self.probabilities, self.margins)
            ),
        }
        return tuple(part for part in PARTS if present[part])

    def sample_rows(self, start: int, stop: int) -> "TrainingTrace":
        """The trace of samples [start, stop) only (a shard): the per-sample parts (correct, true_probability,
        probabilities, margins) cut along their sample axis, n_samples = stop - start; spec, recipe, learning rates
        and checkpoints as they are; the steps part left out (its minibatches index the whole data set)."""
        if not 0 <= start < stop <= self.n_samples:
            raise ValueError(f"sample rows must satisfy 0 <= start < stop <= {self.n_samples}, got [{start}, {stop})")

        def cut(part: torch.Tensor | None) -> torch.Tensor | None:
            return None if part is None else part[:, start:stop].contiguous()

        return TrainingTrace(
            spec=self.spec, config=self.config, n_samples=stop - start, step_lrs=self.step_lrs,
            parameter_names=list(self.parameter_names), checkpoints=self.checkpoints, correct=cut(self.correct),
            true_probability=cut(self.true_probability), probabilities=cut(self.probabilities),
            margins=cut(self.margins),
        )

    def require(self, part: str, method: str, field: str | None = None) -> None:
        """A clear error when a scorer needs a part (and within it ``field``) that this trace lacks."""
        if part not in self.recorded or (field is not None and getattr(self, field) is None):
            hint = {
                "steps": "erm_training.trace.steps: true",
                "checkpoints": "erm_training.trace.checkpoints: 10",
                "dynamics": "erm_training.trace.dynamics: true",
            }[part]
            raise ValueError(
                f"scoring method {method!r} needs the training trace's {part!r}, which this ERM run did not record "
                f"(recorded: {list(self.recorded) or 'nothing'}); set {hint} in conf/base/parameters_erm_training.yml "
                "and rerun erm_training"
            )


def require_trace(trace: TrainingTrace | None, part: str, method: str, field: str | None = None) -> TrainingTrace:
    if trace is None:
        raise ValueError(
            f"scoring method {method!r} reads the training trajectory: pass trace=TrainingTrace (recorded by "
            f"TraceRecorder during fit; in the pipeline, the catalog entry training_trace) with {part!r} recorded"
        )
    trace.require(part, method, field)
    return trace
