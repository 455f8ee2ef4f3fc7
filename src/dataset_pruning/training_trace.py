"""The recorded training trace as data (``TrainingTrace``): what ERM kept for the scorers that read the training
trajectory. It lives below both ``scoring`` (``scoring/trace.py`` records it) and ``tensor_files`` (which stores it),
so neither imports the other's package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from dataset_pruning.registry import Registry


@dataclass(frozen=True)
class TracePart:
    """One part of the training trace, declared once: ``ask``, the ``erm_training.trace`` settings that record it
    (the sweep merges them for the scorers that need it; errors quote them); ``fields``, the ``TrainingTrace``
    fields it fills. A part that ``TraceRecorder`` does not record itself brings its ``recorder``:
    ``recorder(model, data, config)`` -> an object with any of ``training.fit``'s callbacks (``on_step``,
    ``on_epoch_end``, ``on_batch_output``) and ``finish()``, whose value the trace keeps in ``extra[name]``;
    such a part is asked for by name in ``erm_training.trace.parts``."""

    ask: dict[str, Any]
    fields: tuple[str, ...] = ()
    recorder: Callable[..., Any] | None = None

    def asked(self, settings: dict[str, Any]) -> bool:
        """Whether ``settings`` (``erm_training.trace`` as a dict) record this part."""
        return all(set(value) <= set(settings.get(key) or ()) if isinstance(value, list) else bool(settings.get(key))
                   for key, value in self.ask.items())

    @property
    def hint(self) -> str:
        return ", ".join(f"erm_training.trace.{key}: {json.dumps(value)}" for key, value in self.ask.items())


TRACE_PARTS: Registry[TracePart] = Registry("trace part")
TRACE_PARTS.register("steps")(TracePart({"steps": True}, ("step_parameters",)))
TRACE_PARTS.register("checkpoints")(TracePart({"checkpoints": 10}, ("checkpoints",)))
TRACE_PARTS.register("dynamics")(TracePart({"dynamics": True}, ("correct", "true_probability", "probabilities", "margins")))


def part_with_recorder(name: str) -> TracePart:
    """The part ``name`` as ``erm_training.trace.parts`` asks for it: one that brings its own recorder (an unknown
    name lists the known ones; a part with its own setting says which)."""
    part = TRACE_PARTS.get(name)
    if part.recorder is None:
        raise ValueError(f"trace part {name!r} is recorded by its own setting ({part.hint}), not by parts")
    return part


def trace_part(name: str, *, recorder: Callable[..., Any]) -> None:
    """Register a trace part that ``recorder`` records (``TracePart``), asked for by ``erm_training.trace.parts``."""
    TRACE_PARTS.register(name)(TracePart({"parts": [name]}, recorder=recorder))


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
    extra : {part name: value} of the parts with their own recorder (``TracePart.recorder``)
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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> tuple[str, ...]:
        def present(name: str) -> bool:
            value = [getattr(self, key) for key in TRACE_PARTS.get(name).fields]
            return name in self.extra or any(part is not None and not (isinstance(part, list) and not part)
                                             for part in value)

        return tuple(name for name in TRACE_PARTS if present(name))

    def sample_rows(self, start: int, stop: int) -> "TrainingTrace":
        """The trace of samples [start, stop) only (a shard): the per-sample parts (correct, true_probability,
        probabilities, margins) cut along their sample axis, n_samples = stop - start; spec, recipe, learning rates
        checkpoints and ``extra`` as they are; the steps part left out (its minibatches index the whole data set)."""
        if not 0 <= start < stop <= self.n_samples:
            raise ValueError(f"sample rows must satisfy 0 <= start < stop <= {self.n_samples}, got [{start}, {stop})")

        def cut(part: torch.Tensor | None) -> torch.Tensor | None:
            return None if part is None else part[:, start:stop].contiguous()

        return TrainingTrace(
            spec=self.spec, config=self.config, n_samples=stop - start, step_lrs=self.step_lrs,
            parameter_names=list(self.parameter_names), checkpoints=self.checkpoints, correct=cut(self.correct),
            true_probability=cut(self.true_probability), probabilities=cut(self.probabilities),
            margins=cut(self.margins), extra=self.extra,
        )

    def require(self, part: str, method: str, field: str | None = None) -> None:
        """A clear error when a scorer needs a part (and within it ``field``) that this trace lacks."""
        if part not in self.recorded or (field is not None and getattr(self, field) is None):
            hint = TRACE_PARTS.get(part).hint
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
