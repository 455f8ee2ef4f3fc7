"""MoSo, moving-one-sample-out (Tan et al., NeurIPS 2023): how much the rest of the data needs a sample.

At a checkpoint theta with per-sample gradients g_i (all parameters) and their mean g_bar over the N training
samples, the first-order MoSo score is

    M_i = < g_bar - g_i / N, g_i >   (about (N-1)/N < grad L(S \\ z_i), g_i >)

the agreement of the sample's gradient with the gradient of all the others: removing z_i from a gradient step
raises the risk of the remaining samples by about lr / (N-1) * M_i. Scores are summed over the checkpoints of the
ERM trace, each weighted by its learning rate. ``form: exact`` uses the reference's exact expression
(2N-3)/(N-1)^2 ||g_bar||^2 - ||g_i||^2/(N-1)^2 + (2N-4)/(N-1)^2 < g_bar - g_i/N, g_i >. The HIGHEST scores are
kept (the reference uses an equal budget per class: a selection option). Cost per checkpoint: one batched
backward pass for g_bar and one per-sample-gradient pass, memory O(batch_size * P).
Reference: hrtan/MoSo, scoring.py.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.gradients import FunctionalModel, batch_slices
from dataset_pruning.scoring.trace import require_trace


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
        g = fm.per_sample_gradients(fm.theta, *fm.to_device(train, index)).double()
        dots.append((g @ mean_gradient.double()).cpu())
        squares.append((g * g).sum(1).cpu())
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


@scorer("moso", output="scalar", needs=("checkpoints",))
def moso(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    form: str = "first_order",
    batch_size: int = 256,
    device: str = "auto",
    progress: bool = True,
) -> SampleScores:
    """scores : Tensor of shape (n_samples,), sum over checkpoints of lr_k * M_i(theta_k); keep highest."""
    trace = require_trace(trace, "checkpoints", "moso")
    total = torch.zeros(len(train), dtype=torch.float64)
    weights = []
    for checkpoint in tqdm(trace.checkpoints, desc="MoSo checkpoints", disable=not progress, leave=False):
        at_checkpoint = copy.deepcopy(model).cpu()
        at_checkpoint.load_state_dict(checkpoint["state_dict"])
        fm = FunctionalModel(at_checkpoint, device=device)
        total += checkpoint["lr"] * moso_checkpoint_scores(fm, train, form=form, batch_size=batch_size)
        weights.append(checkpoint["lr"])
    if sum(weights) <= 0:
        raise ValueError("every MoSo checkpoint has learning rate 0: record checkpoints before the end of a decayed schedule")
    info = {"checkpoints": [c["epoch"] for c in trace.checkpoints], "lr_weights": weights, "form": form}
    return SampleScores(total.float(), method="moso", keep="highest", info=info)


__all__ = ["moso", "moso_checkpoint_scores"]
