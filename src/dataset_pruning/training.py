"""The one training loop (ERM and retraining) and evaluation.

The recipe of the paper (Sec. 6.1): SGD with momentum 0.9, weight decay 5e-4, cosine decay, batch 128; random crop
and horizontal flip for images. ``TrainingConfig()``'s defaults are the pipeline's (``erm_training.training`` in
``conf/base/parameters_erm_training.yml``): the same recipe with learning rate 0.1 and 60 epochs, sized for
MNIST-1D; the paper's CIFAR runs use learning rate 0.01 and 200 epochs (``conf/cifar10/``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.models.base import Classifier, build_model, pass_rows, relu_in_place
from dataset_pruning.runtime import resolve_device, seeded_global_rng, torch_generator


@dataclass
class TrainingConfig:
    """One training recipe; the defaults equal the pipeline's ``erm_training.training`` block."""

    epochs: int = 60
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | constant
    augment: bool = False  # random crop (pad 4) + horizontal flip, images only
    amp: bool = True  # mixed precision on CUDA; ignored on CPU
    seed: int = 0
    device: str = "auto"
    steps: int | None = None  # total optimizer steps (overrides epochs): retraining.budget 'steps'

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1 (or None: epochs decide), got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; known: constant, cosine")


@dataclass
class ModelSpec:
    """Everything needed to rebuild a model: builder name and arguments (saved beside its ``state_dict``)."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int) -> Classifier:
        """A freshly initialised model; the same seed gives the same weights."""
        with seeded_global_rng(seed):
            return build_model(self.name, self.input_shape, self.num_classes, **self.options)


def save_model(model: nn.Module, spec: ModelSpec) -> dict[str, Any]:
    """The catalog form of a trained model: its spec and a CPU ``state_dict``."""
    return {"spec": asdict(spec), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def load_model(saved: dict[str, Any]) -> Classifier:
    spec = ModelSpec(**saved["spec"])
    model = spec.build(seed=0)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def learning_rate(config: TrainingConfig, step: int, total_steps: int) -> float:
    """Per-step learning rate: cosine decay from ``lr`` to 0 over training, or constant."""
    if config.schedule == "constant":
        return config.lr
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * step / total_steps))


def augment_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip; x of shape (batch, C, H, W)."""
    if x.ndim != 4:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=generator)
    dx = torch.randint(0, 9, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)
    out = padded[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


# Called after each optimiser step with (step, model, batch_indices, learning_rate): a hook for methods that
# record the training trajectory (SGD-Influence, forgetting, dynamic uncertainty).
StepCallback = Callable[[int, nn.Module, torch.Tensor, float], None]
# Called after each epoch with (epoch, model).
EpochCallback = Callable[[int, nn.Module], None]
# Called after each forward pass, before the update, with (step, batch_indices, detached logits): the
# training-pass outputs that forgetting events and TDDS are defined on.
BatchOutputCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


def fit(
    model: nn.Module,
    data: TensorData,
    config: TrainingConfig,
    *,
    on_step: StepCallback | None = None,
    on_epoch_end: EpochCallback | None = None,
    on_batch_output: BatchOutputCallback | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[float]:
    """Minimise the mean cross-entropy over ``data`` (ERM) by SGD; returns the mean training loss per epoch.

    Raises ``FloatingPointError`` as soon as a loss is NaN or infinite, and ``ValueError`` on an empty ``data``.
    """
    n = len(data)
    if n == 0:
        raise ValueError(
            f"fit: the training set is empty (0 samples in {data.name!r}); remove fewer samples "
            f"(optimization_selection.ratio, or a smaller optimization_selection.eps with problem: generalization) "
            f"or load more data"
        )
    device = resolve_device(config.device)
    model.to(device).train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    generator = torch_generator(config.seed)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = config.steps or steps_per_epoch * config.epochs
    x_all, y_all = data.x.to(device), data.y.to(device)
    history: list[float] = []
    step = 0
    bar = tqdm(range(math.ceil(total_steps / steps_per_epoch)), desc=desc, unit="epoch", disable=not progress,
               leave=False)
    for epoch in bar:
        order = torch.randperm(n, generator=generator)
        total = torch.zeros((), device=device)
        seen = 0
        for start in range(0, n, config.batch_size):
            if step == total_steps:  # a step budget ends inside the last epoch
                break
            batch = order[start : start + config.batch_size]
            lr = learning_rate(config, step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb = x_all[batch.to(device)]
            if config.augment:
                xb = augment_images(xb, generator)
            with torch.autocast(device.type, enabled=use_amp):
                logits = model(xb)
                loss = F.cross_entropy(logits, y_all[batch.to(device)])
            if on_batch_output is not None:
                on_batch_output(step, batch, logits.detach())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach() * len(batch)
            seen += len(batch)
            if on_step is not None:
                on_step(step, model, batch, lr)
            step += 1
        epoch_loss = float(total) / seen
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"{desc}: the training loss became {epoch_loss} in epoch {epoch}; lower the learning rate "
                f"(now {config.lr}) or check the inputs for NaN values"
            )
        history.append(epoch_loss)
        bar.set_postfix(loss=f"{epoch_loss:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
    return history


def retraining_recipe(recipe: TrainingConfig, n_full: int, budget: str = "epochs") -> TrainingConfig:
    """The recipe for retraining on a pruned set. ``epochs`` (the paper): the same epochs, so a model on 10 % of
    the data takes 10x fewer SGD steps; ``steps``: as many optimizer steps as ``recipe`` takes on ``n_full``
    samples, so that a loss at high ratios is the selection's, not a shorter training's."""
    if budget == "epochs":
        return recipe
    if budget != "steps":
        raise ValueError(f"unknown retraining budget {budget!r}; known: epochs, steps")
    return replace(recipe, steps=recipe.steps or recipe.epochs * math.ceil(n_full / recipe.batch_size))


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024, device: str = "auto") -> torch.Tensor:
    """Logits of shape (n_samples, num_classes), computed in eval mode, returned on the CPU; images a few at a
    time (``pass_rows``: the activations' memory; the logits are bit for bit those of larger batches)."""
    dev = resolve_device(device)
    model.to(dev).eval()
    step = pass_rows(x, batch_size)
    with relu_in_place(model):
        return torch.cat([model(x[i : i + step].to(dev)).float().cpu() for i in range(0, len(x), step)])


def evaluate(model: nn.Module, data: TensorData, batch_size: int = 1024, device: str = "auto") -> dict[str, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``data`` (``ValueError`` if it is empty)."""
    if len(data) == 0:
        raise ValueError(f"evaluate: the data set {data.name!r} is empty (0 samples); there is nothing to measure")
    logits = predict_logits(model, data.x, batch_size, device)
    return {
        "loss": float(F.cross_entropy(logits, data.y)),
        "accuracy": float((logits.argmax(1) == data.y).float().mean()),
    }
