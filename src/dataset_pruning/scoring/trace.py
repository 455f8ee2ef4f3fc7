"""The training trace: what ERM records for the scorers that read the training trajectory.

``TraceRecorder`` plugs into ``training.fit``'s callbacks and returns a ``TrainingTrace`` (the catalog entry
``training_trace``). Each part is recorded only when asked, because some grow with n * epochs or steps * P:

- ``steps`` (SGD-Influence, Hara et al. 2019): every step's parameters theta_t (before step t, plus the final
  ones), its minibatch indices and learning rate, and the optimiser's momentum and weight decay.
- ``checkpoints`` (MoSo): K state_dicts at evenly spaced epoch ends, each with the learning rate of its last step.
- ``dynamics`` (forgetting, dynamic uncertainty, TDDS, AUM): per epoch, the training-pass correctness of every
  sample (before the update of its minibatch) and its training-pass logit margin (true-class logit minus the
  largest other logit), the clean-view (eval mode, no augmentation) probability of its true class at the end of
  the epoch, and the training-pass softmax of the first ``probability_epochs`` epochs.

Every trace holds the model spec, the training recipe and the per-step learning rates (a few kilobytes), so a
trace with nothing recorded is still a valid catalog entry.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Callable, Sequence

import torch
from torch import nn

from dataset_pruning.data.base import TensorData
from dataset_pruning.models.base import feature_batches
from dataset_pruning.training_trace import (  # noqa: F401  (TRACE_PARTS, require_trace re-exported)
    TRACE_PARTS,
    TrainingTrace,
    part_with_recorder,
    require_trace,
)


def _chain(calls: list[Callable[..., None]]) -> Callable[..., None]:
    if len(calls) == 1:
        return calls[0]

    def call_all(*args: Any) -> None:
        for call in calls:
            call(*args)

    return call_all


class TraceRecorder:
    """Callbacks for ``training.fit`` that fill a ``TrainingTrace``.

    Usage: ``rec = TraceRecorder(model, data, config, spec, ...); fit(model, data, config, **rec.callbacks());
    trace = rec.finish(model)``.
    """

    def __init__(
        self,
        model: nn.Module,
        data: TensorData,
        config: Any,
        spec: Any,
        *,
        steps: bool = False,
        checkpoints: int = 0,
        dynamics: bool = False,
        probability_epochs: int = 30,
        max_step_bytes: float = 2e9,
        parts: Sequence[str] = (),
        eval_batch_size: int = 1024,
    ) -> None:
        self.data, self.config = data, config
        self.n = len(data)
        self.epochs = int(config.epochs)
        self.steps_per_epoch = math.ceil(self.n / config.batch_size)
        total_steps = self.steps_per_epoch * self.epochs
        self.names = [name for name, p in model.named_parameters() if p.requires_grad]
        num_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if steps:
            size = (total_steps + 1) * num_parameters * 4
            if size > max_step_bytes:
                raise ValueError(
                    f"recording every step's parameters needs {size / 1e9:.2f} GB ({total_steps} steps x "
                    f"{num_parameters} parameters), above erm_training.trace.max_step_bytes = "
                    f"{max_step_bytes / 1e9:.2f} GB: raise that limit, train fewer epochs, or score with "
                    "whole_network_influence, which needs no trajectory"
                )
        if checkpoints < 0 or checkpoints > self.epochs:
            raise ValueError(f"trace.checkpoints must lie in [0, epochs = {self.epochs}], got {checkpoints}")
        self.record_steps, self.record_dynamics = steps, dynamics
        # K evenly spaced epoch ends, the last one included: epochs ceil(E k / K) - 1, k = 1..K
        self.checkpoint_epochs = sorted({math.ceil(self.epochs * k / checkpoints) - 1 for k in range(1, checkpoints + 1)})
        self.probability_epochs = min(int(probability_epochs), self.epochs) if dynamics else 0
        self.eval_batch_size = eval_batch_size
        self.spec = asdict(spec) if not isinstance(spec, dict) else dict(spec)
        self.lrs: list[float] = []
        self.batches: list[torch.Tensor] = []
        self.parameters: list[torch.Tensor] = [self._flat(model)] if steps else []
        self.checkpoints: list[dict[str, Any]] = []
        c = data.num_classes
        self.correct = torch.zeros(self.epochs, self.n, dtype=torch.bool) if dynamics else None
        self.true_probability = torch.zeros(self.epochs, self.n) if dynamics else None
        self.probabilities = torch.zeros(self.probability_epochs, self.n, c, dtype=torch.float16) if dynamics else None
        self.margins = torch.zeros(self.epochs, self.n) if dynamics else None
        self.extra_recorders = {}  # the parts with their own recorder (training_trace.TracePart), by name
        for name in parts:
            self.extra_recorders[name] = part_with_recorder(name).recorder(model, data, config)

    def _flat(self, model: nn.Module) -> torch.Tensor:
        named = dict(model.named_parameters())
        return torch.cat([named[name].detach().float().flatten().cpu() for name in self.names])

    def callbacks(self) -> dict[str, Any]:
        """``training.fit``'s callbacks: this recorder's, then each extra part's."""
        names = ("on_step", "on_epoch_end", "on_batch_output")
        return {name: _chain([getattr(self, name)] + [getattr(recorder, name) for recorder in
                                                      self.extra_recorders.values() if hasattr(recorder, name)])
                for name in names}

    def on_batch_output(self, step: int, batch: torch.Tensor, logits: torch.Tensor) -> None:
        if not self.record_dynamics:
            return
        epoch = step // self.steps_per_epoch
        batch = batch.cpu()
        logits = logits.float().cpu()
        labels = self.data.y[batch]
        self.correct[epoch, batch] = logits.argmax(1) == labels
        true = logits.gather(1, labels[:, None]).squeeze(1)
        other = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
        self.margins[epoch, batch] = true - other
        if epoch < self.probability_epochs:
            self.probabilities[epoch, batch] = torch.softmax(logits, 1).half()

    def on_step(self, step: int, model: nn.Module, batch: torch.Tensor, lr: float) -> None:
        self.lrs.append(float(lr))
        if self.record_steps:
            self.batches.append(batch.detach().cpu().clone())
            self.parameters.append(self._flat(model))

    @torch.no_grad()
    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        if epoch in self.checkpoint_epochs:
            self.checkpoints.append(
                {
                    "epoch": epoch,
                    "step": len(self.lrs),
                    "lr": self.lrs[-1],
                    "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                }
            )
        if self.record_dynamics:  # the clean view: eval mode, the shared feature pass (channels-last images)
            was_training = model.training
            device = next(model.parameters()).device
            for start, h in feature_batches(model, self.data.x, self.eval_batch_size, device):
                stop = start + len(h)
                p = torch.softmax(model.head(h).float(), 1).cpu()
                self.true_probability[epoch, start:stop] = p[torch.arange(stop - start), self.data.y[start:stop]]
            model.train(was_training)

    def finish(self) -> TrainingTrace:
        config = asdict(self.config) if not isinstance(self.config, dict) else dict(self.config)
        return TrainingTrace(
            spec=self.spec,
            config=config,
            n_samples=self.n,
            step_lrs=torch.tensor(self.lrs, dtype=torch.float64),
            parameter_names=list(self.names),
            step_parameters=torch.stack(self.parameters) if self.record_steps else None,
            step_batches=self.batches if self.record_steps else None,
            checkpoints=self.checkpoints,
            correct=self.correct,
            true_probability=self.true_probability,
            probabilities=self.probabilities,
            margins=self.margins,
            extra={name: recorder.finish() for name, recorder in self.extra_recorders.items()},
        )


__all__ = ["TRACE_PARTS", "TraceRecorder", "TrainingTrace", "require_trace"]
