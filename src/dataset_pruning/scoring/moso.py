"""MoSo, moving-one-sample-out (Tan et al., NeurIPS 2023): how much the rest of the data needs a sample.

At a checkpoint theta with per-sample gradients g_i (all parameters) and their mean g_bar over the N training
samples, the first-order MoSo score is

    M_i = < g_bar - g_i / N, g_i >   (about (N-1)/N < grad L(S \\ z_i), g_i >)

the agreement of the sample's gradient with the gradient of all the others: removing z_i from a gradient step
raises the risk of the remaining samples by about lr / (N-1) * M_i. Scores are summed over the checkpoints of the
ERM trace, each weighted by its learning rate. ``form: exact`` uses the reference's exact expression
(2N-3)/(N-1)^2 ||g_bar||^2 - ||g_i||^2/(N-1)^2 + (2N-4)/(N-1)^2 < g_bar - g_i/N, g_i >. The HIGHEST scores are
kept (the reference uses an equal budget per class: ``optimization_selection.class_balanced: true``). Cost per
checkpoint: one batched backward pass for g_bar and one per-sample-gradient pass, memory O(batch_size * P).

Surrogates (``surrogates: k`` > 0, the reference's protocol, ``hrtan/MoSo`` surrogate_training.py + scoring.py):
the training set is split into k disjoint random parts (the reference: 8 contiguous parts of a shuffled set);
part j trains a fresh initialisation of the architecture with the ERM recipe (the reference: 50 epochs, lr 0.1,
cosine, momentum 0.9) and each of its samples is scored at ``checkpoints`` epoch ends of that run (evenly
spaced; the reference draws 10 of its 50 at random), against the mean gradient of its own part (N = n / k),
weighted by the learning rate. With ``surrogates: 0`` (the default) the samples are scored at the ERM run's own
checkpoints (``erm_training.trace.checkpoints``) against the whole set: cheaper (no training), but the model has
seen all n samples, and late checkpoints of a converged model weigh the -||g_i||^2 / N term (docs/scoring.md,
"MoSo fidelity"). The reference's scoring calls the exact form (``form: exact``). Cost of the surrogates: one
ERM run in all (k runs on n / k samples), plus the checkpoint passes.
Reference: hrtan/MoSo, scoring.py (MoSo_scoring_exact), surrogate_training.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.runtime import torch_generator
from dataset_pruning.scoring.early_training import training_recipe
from dataset_pruning.scoring.gradients import (FunctionalModel, batch_slices, layerwise,
                                               per_sample_gradient_norms, reinitialised)
from dataset_pruning.scoring.trace import TraceRecorder, require_trace
from dataset_pruning.training import TrainingConfig, fit


def moso_checkpoint_scores(fm: FunctionalModel, train: TensorData, *, form: str, batch_size: int) -> torch.Tensor:
    """MoSo scores at the model's current parameters, shape (n,), float64 on the CPU."""
    n = len(train)
    mean_gradient = torch.zeros_like(fm.theta)
    for index in batch_slices(n, batch_size):  # g_bar as the gradient of the summed loss: one backward per batch
        x, y = fm.to_device(train, index)
        theta = fm.theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(fm.logits(theta, x), y, reduction="sum"), theta)
        mean_gradient += g / n
    dots, squares = [], []
    for index in batch_slices(n, batch_size):
        x, y = fm.to_device(train, index)
        if layerwise(fm.module):  # layer by layer from one backward pass (gradients.per_sample_gradient_norms)
            square, dot = per_sample_gradient_norms(fm.module, x, y, along=mean_gradient)
        else:
            g = fm.per_sample_gradients(fm.theta, x, y).double()
            square, dot = (g * g).sum(1), g @ mean_gradient.double()
        dots.append(dot.cpu())
        squares.append(square.cpu())
    dot, square = torch.cat(dots), torch.cat(squares)
    first_order = dot - square / n
    if form == "first_order":
        return first_order
    if form == "exact":
        if n < 3:
            raise ValueError("the exact MoSo form needs at least 3 samples")
        mean_square = float(mean_gradient.double() @ mean_gradient.double())
        return ((2 * n - 3) * mean_square - square + (2 * n - 4) * first_order) / (n - 1) ** 2
    raise ValueError(f"unknown form {form!r}; known: first_order, exact")


def checkpoint_scores(checkpoint: dict, *, model: torch.nn.Module, train: TensorData, form: str, batch_size: int,
                      device: str) -> torch.Tensor:
    """lr_k * M_i(theta_k) at one checkpoint ({lr, state_dict}) of ``model``'s architecture: shape (n,), float64."""
    at_checkpoint = copy.deepcopy(model).cpu()
    at_checkpoint.load_state_dict(checkpoint["state_dict"])
    fm = FunctionalModel(at_checkpoint, device=device)
    return checkpoint["lr"] * moso_checkpoint_scores(fm, train, form=form, batch_size=batch_size)


def checkpoint_sum(
    model: torch.nn.Module, train: TensorData, checkpoints: list[dict], *, form: str, batch_size: int, device: str,
    progress: bool = False,
) -> tuple[torch.Tensor, list[float]]:
    """sum_k lr_k * M_i(theta_k) over ``checkpoints`` ({lr, state_dict}) on ``train``, shape (n,), float64."""
    parts = one_process(checkpoint_scores, checkpoints, progress=progress, desc="MoSo checkpoints", model=model,
                        train=train, form=form, batch_size=batch_size, device=device)
    return sum_in_order(parts, len(train)), [checkpoint["lr"] for checkpoint in checkpoints]


def sum_in_order(parts: list[torch.Tensor], n: int) -> torch.Tensor:
    """The parts (each (n,)) added in order into float64 zeros: (n,)."""
    total = torch.zeros(n, dtype=torch.float64)
    for part in parts:
        total += part
    return total


def one_process(fn: Callable, units: list, *, progress: bool = False, desc: str = "", **shared) -> list:
    """``[fn(unit, **shared) for unit in units]``: the one-process mapper of ``moso`` (scoring/sharded.py
    maps the same units on Dask workers)."""
    return [fn(unit, **shared) for unit in tqdm(units, desc=desc, disable=not progress, leave=False)]


def surrogate_parts(n: int, surrogates: int, seed: int) -> list[torch.Tensor]:
    """The k disjoint parts of a seeded permutation of the n samples, each sorted: int64 tensors."""
    order = torch.randperm(n, generator=torch_generator(seed))
    return [torch.sort(part).values for part in torch.tensor_split(order, surrogates)]


def surrogate_part_scores(unit: tuple[int, torch.Tensor], *, model: torch.nn.Module, train: TensorData,
                          recipe: TrainingConfig, checkpoints: int, form: str, batch_size: int, seed: int,
                          device: str) -> tuple[torch.Tensor, list[float]]:
    """Surrogate k = unit[0] on part unit[1]: a fresh initialisation trained on the part, its samples scored at
    ``checkpoints`` epoch ends against the part: (scores of shape (len(part),), float64; the checkpoints' lrs)."""
    k, part = unit
    data = train.subset(part)
    fresh = reinitialised(model, seed + k)
    config = TrainingConfig(**{**asdict(recipe), "seed": recipe.seed + seed + k, "device": device, "steps": None})
    recorder = TraceRecorder(fresh, data, config, {}, checkpoints=checkpoints)
    fit(fresh, data, config, progress=False, **recorder.callbacks())
    return checkpoint_sum(fresh, data, recorder.finish().checkpoints, form=form, batch_size=batch_size, device=device)


def surrogate_scores(
    model: torch.nn.Module,
    train: TensorData,
    *,
    recipe: TrainingConfig,
    surrogates: int,
    checkpoints: int,
    form: str,
    batch_size: int,
    seed: int,
    device: str,
    progress: bool = False,
    mapper: Callable = one_process,
) -> tuple[torch.Tensor, dict]:
    """The reference's protocol (module docstring): (scores of shape (n,), float64; info). ``mapper`` computes
    the surrogates (``one_process``, or on Dask workers)."""
    n = len(train)
    if not 1 <= surrogates <= n // 3:
        raise ValueError(
            f"surrogates must lie in [1, n / 3 = {n // 3}] (each part needs >= 3 samples), got {surrogates}"
        )
    if not 1 <= checkpoints <= recipe.epochs:
        raise ValueError(f"checkpoints must lie in [1, {recipe.epochs}] (the recipe's epochs), got {checkpoints}")
    parts = surrogate_parts(n, surrogates, seed)
    results = mapper(surrogate_part_scores, list(enumerate(parts)), progress=progress, desc="MoSo surrogates",
                     model=model, train=train, recipe=recipe, checkpoints=checkpoints, form=form,
                     batch_size=batch_size, seed=seed, device=device)
    total = torch.zeros(n, dtype=torch.float64)
    for part, (scores, weights) in zip(parts, results):
        total[part] = scores
    info = {"surrogates": surrogates, "checkpoints": checkpoints, "epochs": recipe.epochs, "lr_weights": weights}
    return total, info


@scorer("moso", output="scalar", needs=("checkpoints",))
def moso(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    form: str = "first_order",
    surrogates: int = 0,
    checkpoints: int = 10,
    recipe: dict | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool = True,
    mapper: Callable = one_process,
) -> SampleScores:
    """scores : Tensor of shape (n_samples,), sum over checkpoints of lr_k * M_i(theta_k); keep highest.

    ``surrogates: 0``: the ERM trace's checkpoints; ``surrogates: k``: k surrogate runs on disjoint parts, each
    scored at ``checkpoints`` epoch ends (``recipe``: their training recipe, default the ERM run's). The units of
    work (ERM checkpoints, or surrogates) are computed by ``mapper``, a runner argument, not an option
    (``base.RUNNER_ARGUMENTS``): ``one_process``, or Dask workers (scoring/sharded.py); they are summed (or
    placed) in order.
    """
    if form not in ("first_order", "exact"):
        raise ValueError(f"unknown form {form!r}; known: first_order, exact")
    if surrogates:
        config = training_recipe(recipe, trace)
        total, info = surrogate_scores(
            model, train, recipe=config, surrogates=int(surrogates), checkpoints=int(checkpoints), form=form,
            batch_size=batch_size, seed=seed, device=device, progress=progress, mapper=mapper,
        )
        return SampleScores(total.float(), method="moso", keep="highest", info={**info, "form": form})
    trace = require_trace(trace, "checkpoints", "moso")
    weights = [checkpoint["lr"] for checkpoint in trace.checkpoints]
    if sum(weights) <= 0:
        raise ValueError("every MoSo checkpoint has learning rate 0: record checkpoints before the end of a decayed "
                         "schedule")
    parts = mapper(checkpoint_scores, trace.checkpoints, progress=progress, desc="MoSo checkpoints", model=model,
                   train=train, form=form, batch_size=batch_size, device=device)
    info = {"checkpoints": [c["epoch"] for c in trace.checkpoints], "lr_weights": weights, "form": form}
    return SampleScores(sum_in_order(parts, len(train)).float(), method="moso", keep="highest", info=info)


__all__ = ["checkpoint_scores", "checkpoint_sum", "moso", "moso_checkpoint_scores", "one_process",
           "sum_in_order", "surrogate_part_scores", "surrogate_parts", "surrogate_scores"]
