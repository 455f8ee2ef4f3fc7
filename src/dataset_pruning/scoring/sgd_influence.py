"""SGD-Influence (Hara, Nitanda & Maehara, NeurIPS 2019; the journal Dataset Pruning's influence estimate).

The parameter change at the end of training caused by removing z_i from every minibatch it was in, followed
along the recorded SGD trajectory: no convexity or optimality assumption. The ERM run is PyTorch SGD with
momentum mu, weight decay lambda and step sizes eta_t:

    v_{t+1} = mu v_t + grad L_{B_t}(theta_t) + lambda theta_t,    theta_{t+1} = theta_t - eta_t v_{t+1}

Removing z_i takes (1/|B_t|) grad l(z_i; theta_t) out of each of its minibatches' gradient. Linearised, the
state (delta theta, delta v) evolves by a linear map per step, and for a row r of the projection R the adjoint
runs backwards from (a, b) = (R_r, 0), with A_t = hess L_{B_t}(theta_t) + lambda I:

    w = eta_t a - b;   S[i, r] += <w, grad l(z_i; theta_t)> / |B_t|  for i in B_t;   a <- a - A_t w;   b <- -mu w

With mu = 0 this is the reference recursion of sato9hara/sgd-influence (u <- u - eta_t H_t u); momentum is carried
exactly through b. S_i (projected: R S_i) is the parameter change from REMOVING z_i, the sign convention of
``last_layer_influence``. Cost: per recorded step, k Hessian-vector products and one per-sample-gradient pass on
its minibatch, i.e. about k times the cost of training (k = projection_dim, or P without a projection).

Restrictions (each raises): the trace must hold every step (``erm_training.trace.steps: true``); no data
augmentation (the augmented inputs are not recorded); no batch-norm (its per-step batch statistics are not
recorded). Mixed precision on CUDA is replayed in the scorer's dtype, a small deviation from the recorded steps.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, as_indices, scorer
from dataset_pruning.scoring.gradients import FunctionalModel, gaussian_projection
from dataset_pruning.scoring.trace import require_trace


def _check_replayable(model: nn.Module, trace) -> None:
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise NotImplementedError(
            "sgd_influence does not support batch-norm models: the per-step batch statistics are not recorded; "
            "use whole_network_influence or last_layer_influence"
        )
    if trace.config.get("augment"):
        raise ValueError(
            "sgd_influence replays the recorded steps on the stored inputs, but ERM trained with augment: true "
            "(random crops and flips are not recorded); retrain with augment: false or use another scorer"
        )
    if trace.config.get("nesterov"):
        raise NotImplementedError("sgd_influence models plain (heavy-ball) momentum, not Nesterov momentum")


@scorer("sgd_influence", output="vector", needs=("steps",))
def sgd_influence(
    model: nn.Module,
    train: TensorData,
    *,
    trace=None,
    projection_dim: int | None = 32,
    max_dim: int = 4096,
    vector_chunk: int = 64,
    indices=None,
    dtype: str = "float32",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> SampleScores:
    """S of shape (n, projection_dim) (R S_i with the Gaussian R of ``gradients.gaussian_projection``), or (n, P).

    Samples never in a recorded minibatch get S_i = 0. ``indices`` scores only these samples (rows in this order,
    shape (len(indices), d)): the adjoint recursion still runs over every recorded step (the full trajectory), only
    the per-sample gradients of the other samples are skipped, so the rows equal the full scoring's at ``indices``.
    """
    trace = require_trace(trace, "steps", "sgd_influence")
    _check_replayable(model, trace)
    if trace.n_samples != len(train):
        raise ValueError(f"the training trace has {trace.n_samples} samples but train has {len(train)}")
    momentum = float(trace.config.get("momentum", 0.0))
    weight_decay = float(trace.config.get("weight_decay", 0.0))
    fm = FunctionalModel(model, parameters=trace.parameter_names, device=device, dtype=dtype)
    p = fm.num_parameters
    if projection_dim is None:
        if p > max_dim:
            raise ValueError(
                f"without a projection SGD-Influence carries P = {p} adjoint vectors (> max_dim = {max_dim}); "
                "set projection_dim (e.g. 32)"
            )
        a = torch.eye(p, device=fm.device, dtype=fm.dtype)
    else:
        a = gaussian_projection(p, int(projection_dim), seed=seed, device=fm.device, dtype=fm.dtype)
    b = torch.zeros_like(a)
    n = len(train)
    if indices is None:
        row = torch.arange(n, device=fm.device)
    else:  # row[i] = the output row of sample i, -1 for samples not scored
        chosen = as_indices(indices, n)
        row = torch.full((n,), -1, dtype=torch.long)
        row[chosen] = torch.arange(len(chosen))
        row = row.to(fm.device)
    scored = int((row >= 0).sum())
    influence = torch.zeros(scored, len(a), device=fm.device, dtype=fm.dtype)
    steps = len(trace.step_batches)
    for t in tqdm(range(steps - 1, -1, -1), desc="SGD-Influence", disable=not progress, leave=False):
        theta = trace.step_parameters[t].to(fm.device, fm.dtype)
        batch = trace.step_batches[t]
        eta = float(trace.step_lrs[t])
        x, y = fm.to_device(train, batch)
        w = eta * a - b
        rows = row[batch.to(fm.device)]
        members = (rows >= 0).nonzero().flatten()
        if len(members):
            gradients = fm.per_sample_gradients(theta, x[members], y[members])  # (|B and scored|, P)
            influence.index_add_(0, rows[members], gradients @ w.T / len(batch))
        hw = fm.hvp(theta, x, y, w, chunk=vector_chunk)
        a = a - hw - weight_decay * w
        b = -momentum * w
        if not torch.isfinite(a).all():
            raise FloatingPointError(
                f"SGD-Influence diverged at step {t}: the linearised training dynamics blow up (a learning rate "
                "above 2 / curvature); use a projection with fewer steps or another scorer"
            )
    info = {
        "steps": steps, "momentum": momentum, "weight_decay": weight_decay, "projection_dim": projection_dim,
        "scored_samples": scored,
    }
    return SampleScores(influence.float().cpu(), method="sgd_influence", info=info)


__all__ = ["sgd_influence"]
