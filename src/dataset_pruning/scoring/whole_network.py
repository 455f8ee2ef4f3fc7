"""Whole-network parameter influence (Dataset Pruning, Eq. 2, on every parameter instead of the last layer).

    S_i = (1/n) A^-1 grad l(z_i, theta),    A = (1/n) sum_j hess l(z_j, theta) + (weight_decay + damping) I

A is never formed: inverse-Hessian-vector products are solved by conjugate gradient on Hessian-vector products
(torch.func). With ``projection_dim = k`` the per-sample vectors are projected by a Gaussian R (k x P) with
E ||R v||^2 = ||v||^2: R S_i = (1/n) (A^-1 R^T)^T grad l_i, so k CG solves (one block) and one pass of
per-sample gradients give all n projected vectors, and S (n x k) fits in memory at large n. Without a
projection, min(n, P) right-hand sides are solved (the identity or the gradients themselves).

A network's Hessian can be indefinite away from a strict minimum: CG then meets a direction of non-positive
curvature of A, and the scorer stops with advice instead of returning garbage: raise the damping, or set
``curvature: gauss_newton`` (the positive semi-definite Gauss-Newton part of the Hessian, exact for a linear
model; Martens 2010), which CG always solves.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import numpy_rng
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.gradients import FunctionalModel, gaussian_projection, mean_hvp, per_sample_gradients


def conjugate_gradient(
    operator: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    *,
    steps: int,
    tol: float,
    progress: bool = False,
) -> tuple[torch.Tensor, dict]:
    """Solve A x_r = b_r for every row b_r of ``rhs`` (k, P) at once; A symmetric positive definite.

    Converged rows (||r|| <= tol ||b||) are frozen and drop out of the Hessian-vector products.
    Returns (x of shape (k, P), info {iterations, max_relative_residual}).
    """
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rs = (r * r).sum(1)
    target = tol * rhs.norm(dim=1)
    active = rs.sqrt() > target
    iterations = 0
    bar = tqdm(total=steps, desc="conjugate gradient", disable=not progress, leave=False)
    while active.any() and iterations < steps:
        idx = active.nonzero().flatten()
        ap = operator(p[idx])
        curvature = (p[idx] * ap).sum(1)
        if not (curvature > 0).all():
            raise FloatingPointError(
                "conjugate gradient met a direction of non-positive curvature: the network's Hessian plus damping "
                "is not positive definite here; raise damping, set curvature: gauss_newton (positive definite), "
                "or score a converged model"
            )
        alpha = rs[idx] / curvature
        x[idx] += alpha[:, None] * p[idx]
        r[idx] -= alpha[:, None] * ap
        new_rs = (r[idx] * r[idx]).sum(1)
        p[idx] = r[idx] + (new_rs / rs[idx])[:, None] * p[idx]
        rs[idx] = new_rs
        active = rs.sqrt() > target
        iterations += 1
        bar.update()
    bar.close()
    if not torch.isfinite(x).all():
        raise FloatingPointError("conjugate gradient produced NaN or infinite values; raise damping")
    norms = rhs.norm(dim=1).clamp_min(torch.finfo(rhs.dtype).tiny)
    residual = float((rs.sqrt() / norms).max())
    if active.any():
        warnings.warn(
            f"conjugate gradient stopped after {steps} steps with relative residual {residual:.2e} > tol {tol:.0e}; "
            "raise cg_steps or damping for an exact solve",
            stacklevel=2,
        )
    return x, {"cg_iterations": iterations, "cg_max_relative_residual": residual}


@scorer("whole_network_influence", output="vector")
def whole_network_influence(
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace=None,
    weight_decay: float = 5e-4,
    damping: float = 0.1,
    projection_dim: int | None = 256,
    curvature: str = "hessian",
    parameters: Sequence[str] | None = None,
    cg_steps: int = 100,
    cg_tol: float = 1e-5,
    hessian_samples: int | None = None,
    batch_size: int = 256,
    vector_chunk: int = 64,
    max_elements: float = 5e8,
    dtype: str = "float32",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> SampleScores:
    """S of shape (n, projection_dim), or (n, P) without a projection: Eq. 2 on all (or the named) parameters.

    curvature : ``hessian`` (Eq. 2 as written) or ``gauss_newton`` (positive semi-definite).
    damping : 0.1 by default: on the default MNIST-1D CNN after ERM (95% test accuracy) the Hessian plus 0.01 is
    indefinite (CG refuses) and plus 0.1 is not; Gauss-Newton works with 0.01.
    hessian_samples : the Hessian is averaged over a seeded random subset of this many samples (None: all).
    Cost: cg_steps block HVPs of k vectors over the Hessian samples, plus one batched per-sample-gradient pass.
    """
    if damping < 0 or weight_decay < 0:
        raise ValueError(f"damping and weight_decay must be >= 0, got {damping} and {weight_decay}")
    fm = FunctionalModel(model, parameters=parameters, device=device, dtype=dtype)
    n, p = len(train), fm.num_parameters
    hessian_data = train
    if hessian_samples is not None and hessian_samples < n:
        chosen = torch.as_tensor(numpy_rng(seed).choice(n, size=int(hessian_samples), replace=False))
        hessian_data = train.subset(chosen.sort().values)
    reg = weight_decay + damping

    def operator(v: torch.Tensor) -> torch.Tensor:
        product = mean_hvp(fm, hessian_data, v, batch_size=batch_size, vector_chunk=vector_chunk, curvature=curvature)
        return product + reg * v

    def solve(rhs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return conjugate_gradient(operator, rhs, steps=cg_steps, tol=cg_tol, progress=progress)

    info: dict = {"parameters": p, "damping": damping, "weight_decay": weight_decay, "curvature": curvature}
    if projection_dim is not None:
        projection = gaussian_projection(p, int(projection_dim), seed=seed, device=fm.device, dtype=fm.dtype)
        solved, cg_info = solve(projection)  # rows: A^-1 R_r
        influence = per_sample_gradients(fm, train, projection=solved, batch_size=batch_size, progress=progress)
        info["projection_dim"] = int(projection_dim)
    else:
        if min(n, p) * p > max_elements:
            raise ValueError(
                f"without a projection S needs {min(n, p)} CG solves of dimension P = {p} ({min(n, p) * p:.2e} "
                f"numbers > max_elements = {max_elements:.0e}); set projection_dim (e.g. 256)"
            )
        if p <= n:  # solve for A^-1 itself (symmetric), then S = G A^-1
            inverse, cg_info = solve(torch.eye(p, device=fm.device, dtype=fm.dtype))
            influence = per_sample_gradients(fm, train, projection=inverse, batch_size=batch_size, progress=progress)
        else:
            gradients = per_sample_gradients(fm, train, batch_size=batch_size, progress=progress)
            influence, cg_info = solve(gradients)
    info.update(cg_info)
    return SampleScores((influence / n).float().cpu(), method="whole_network_influence", info=info)


__all__ = ["conjugate_gradient", "whole_network_influence"]
