"""Whole-network parameter influence (Dataset Pruning, Eq. 2, on every parameter instead of the last layer).

    S_i = (1/n) A^-1 grad l(z_i, theta),    A = (1/n) sum_j hess l(z_j, theta) + (weight_decay + damping) I

A is never formed: inverse-Hessian-vector products are solved by conjugate gradient on Hessian-vector products
(torch.func). With ``projection_dim = k`` the per-sample vectors are projected by a Gaussian R (k x P) with
E ||R v||^2 = ||v||^2: R S_i = (1/n) (A^-1 R^T)^T grad l_i, so k CG solves (one block) and one pass of
per-sample gradients give all n projected vectors, and S (n x k) fits in memory at large n. Without a
projection, min(n, P) right-hand sides are solved (the identity or the gradients themselves).

All right-hand sides are solved together by block CG (``block_conjugate_gradient``): one shared block Krylov
space, one batched Hessian-vector product of the whole block per iteration (vmap over the vectors, on the CPU or
CUDA), which needs several times fewer operator calls than one CG per right-hand side (``cg_method:
independent``, kept for comparison). ``indices`` scores a subset of the samples against the full data's
curvature (score extrapolation, ``scoring/extrapolation/``).

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
from dataset_pruning.scoring.base import SampleScores, as_indices, scorer
from dataset_pruning.scoring.gradients import FunctionalModel, gaussian_projection, mean_hvp, per_sample_gradients


def conjugate_gradient(
    operator: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    *,
    steps: int,
    tol: float,
    progress: bool = False,
) -> tuple[torch.Tensor, dict]:
    """Solve A x_r = b_r for every row b_r of ``rhs`` (k, P) by k independent CGs run side by side; A SPD.

    Each row has its own step sizes, so each explores its own Krylov space; the rows only share the operator
    calls (one batched product per iteration). Converged rows (||r|| <= tol ||b||) are frozen and drop out of
    the products. ``block_conjugate_gradient`` shares the search space and needs far fewer iterations.
    Returns (x of shape (k, P), info {cg_iterations, cg_operator_vectors, cg_max_relative_residual}).
    """
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rs = (r * r).sum(1)
    target = tol * rhs.norm(dim=1)
    active = rs.sqrt() > target
    iterations = vectors = 0
    bar = tqdm(total=steps, desc="conjugate gradient", disable=not progress, leave=False)
    while active.any() and iterations < steps:
        idx = active.nonzero().flatten()
        ap = operator(p[idx])
        vectors += len(idx)
        curvature = (p[idx] * ap).sum(1)
        if not (curvature > 0).all():
            raise FloatingPointError(NEGATIVE_CURVATURE)
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
    return _finish(x, rs.sqrt(), rhs, active, iterations, vectors, steps, tol)


NEGATIVE_CURVATURE = (
    "conjugate gradient met a direction of non-positive curvature: the network's Hessian plus damping is not "
    "positive definite here; raise damping, set curvature: gauss_newton (positive definite), or score a converged "
    "model"
)


def _finish(x, residual_norms, rhs, active, iterations, vectors, steps, tol) -> tuple[torch.Tensor, dict]:
    if not torch.isfinite(x).all():
        raise FloatingPointError("conjugate gradient produced NaN or infinite values; raise damping")
    norms = rhs.norm(dim=1).clamp_min(torch.finfo(rhs.dtype).tiny)
    residual = float((residual_norms / norms).max()) if len(rhs) else 0.0
    if active.any():
        warnings.warn(
            f"conjugate gradient stopped after {steps} steps with relative residual {residual:.2e} > tol {tol:.0e}; "
            "raise cg_steps or damping for an exact solve",
            stacklevel=3,
        )
    info = {"cg_iterations": iterations, "cg_operator_vectors": vectors, "cg_max_relative_residual": residual}
    return x, info


def _orthonormal_rows(z: torch.Tensor, rank_tol: float) -> torch.Tensor:
    """An orthonormal basis (rows) of the row space of ``z`` (m, P), nearly dependent directions dropped.

    Rows are scaled to unit norm first, so a row with a small residual (nearly converged) still counts as a full
    direction; directions with singular value <= rank_tol (relative to the largest) are dropped. Eigen-
    decomposition of the m x m Gram matrix in float64, then one Cholesky pass to restore orthonormality in the
    working precision (CholeskyQR2-like). Cost O(m^2 P), no operator call.
    """
    zn = z / z.norm(dim=1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)
    gram = (zn @ zn.T).double()
    values, vectors = torch.linalg.eigh(gram)
    keep = values > (rank_tol**2) * values.max().clamp_min(torch.finfo(torch.float64).tiny)
    basis = ((vectors[:, keep] / values[keep].sqrt()).T.to(z.dtype)) @ zn
    gram = (basis @ basis.T).double()
    factor, failed = torch.linalg.cholesky_ex(gram)
    if failed:
        return basis
    return torch.linalg.solve_triangular(factor, basis.double(), upper=False).to(z.dtype)


def block_conjugate_gradient(
    operator: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    *,
    steps: int,
    tol: float,
    progress: bool = False,
    rank_tol: float | None = None,
) -> tuple[torch.Tensor, dict]:
    """Solve A X = B for all rows of ``rhs`` (k, P) at once by block CG; A symmetric positive definite.

    All right-hand sides share one block Krylov space: iteration j searches span{R_0, A R_0, ..., A^j R_0} of
    every residual, so k rows need about (iterations of one CG) / (gain of the shared space) block products
    (O'Leary 1980). The search block is kept orthonormal and rank-revealing (breakdown-free block CG, Ji & Li
    2017): S = orth(Z - (Z Q^T) G^-1 S) with Q = S A and G = S A S^T, so nearly dependent residuals (many rows,
    or rows close to convergence) never make G singular. Converged rows (||r|| <= tol ||b||, the criterion of
    ``conjugate_gradient``) leave the search block but keep receiving its (free) updates. The operator is called
    once per iteration on the whole block (``operator`` takes and returns rows, shape (s, P)).

    A non-positive eigenvalue of G (curvature of A on the search block) raises ``FloatingPointError`` with the
    advice of ``conjugate_gradient``. Returns (X of shape (k, P), info {cg_iterations, cg_operator_vectors,
    cg_max_relative_residual (of the recurrence)}).
    """
    if rank_tol is None:
        rank_tol = float(torch.finfo(rhs.dtype).eps) ** 0.5
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    target = tol * rhs.norm(dim=1)
    norms = r.norm(dim=1)
    active = norms > target
    iterations = vectors = 0
    bar = tqdm(total=steps, desc="block conjugate gradient", disable=not progress, leave=False)
    s = _orthonormal_rows(r[active], rank_tol) if active.any() else None
    while active.any() and iterations < steps and len(s):
        q = operator(s)  # (s, P): S A
        vectors += len(s)
        g = (s @ q.T).double()
        g = 0.5 * (g + g.T)
        factor, failed = torch.linalg.cholesky_ex(g)
        if failed or not torch.isfinite(g).all():
            raise FloatingPointError(NEGATIVE_CURVATURE)
        # X += (R S^T G^-1) S,  R -= (R S^T G^-1) Q
        coefficients = torch.cholesky_solve((s @ r.T).double(), factor).T.to(rhs.dtype)  # (k, s)
        x += coefficients @ s
        r -= coefficients @ q
        norms = r.norm(dim=1)
        active = norms > target
        iterations += 1
        bar.update()
        if not active.any() or iterations >= steps:
            break
        z = r[active]
        # A-orthogonalise against the current block: Z - (Z A S^T) G^-1 S, with Z A S^T = Z Q^T (A symmetric)
        beta = torch.cholesky_solve((q @ z.T).double(), factor).T.to(rhs.dtype)  # (m, s)
        s = _orthonormal_rows(z - beta @ s, rank_tol)
    bar.close()
    return _finish(x, norms, rhs, active, iterations, vectors, steps, tol)


CG_METHODS = {"block": block_conjugate_gradient, "independent": conjugate_gradient}


@scorer("whole_network_influence", output="vector")
def whole_network_influence(
    model: torch.nn.Module,
    train: TensorData,
    *,
    weight_decay: float = 5e-4,
    damping: float = 0.1,
    projection_dim: int | None = 256,
    curvature: str = "hessian",
    parameters: Sequence[str] | None = None,
    cg_method: str = "block",
    cg_steps: int = 100,
    cg_tol: float = 1e-5,
    hessian_samples: int | None = None,
    indices: Sequence[int] | torch.Tensor | None = None,
    batch_size: int = 128,
    vector_chunk: int = 16,
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
    cg_method : ``block`` (block CG, one shared Krylov space for all right-hand sides; the default) or
    ``independent`` (one CG per right-hand side, run side by side). Both stop at ||r|| <= cg_tol ||b|| per row,
    after at most ``cg_steps`` iterations; the largest relative residual is in ``info``.
    hessian_samples : the Hessian is averaged over a seeded random subset of this many samples (None: all).
    indices : score only these samples (rows of the result in this order, shape (len(indices), d)); the Hessian,
    n in the 1/n factor and the projection stay those of the full ``train``, so the rows equal those of the full
    scoring at these indices.
    Cost: iterations x (block size) HVPs over the Hessian samples, plus one batched per-sample-gradient pass over
    the scored samples.
    """
    if damping < 0 or weight_decay < 0:
        raise ValueError(f"damping and weight_decay must be >= 0, got {damping} and {weight_decay}")
    if cg_method not in CG_METHODS:
        raise ValueError(f"unknown cg_method {cg_method!r}; known: {', '.join(CG_METHODS)}")
    fm = FunctionalModel(model, parameters=parameters, device=device, dtype=dtype)
    n, p = len(train), fm.num_parameters
    scored = train if indices is None else train.subset(as_indices(indices, n))
    m = len(scored)
    hessian_data = train
    if hessian_samples is not None and hessian_samples < n:
        chosen = torch.as_tensor(numpy_rng(seed).choice(n, size=int(hessian_samples), replace=False))
        hessian_data = train.subset(chosen.sort().values)
    reg = weight_decay + damping

    def operator(v: torch.Tensor) -> torch.Tensor:
        product = mean_hvp(fm, hessian_data, v, batch_size=batch_size, vector_chunk=vector_chunk, curvature=curvature)
        return product + reg * v

    def solve(rhs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        return CG_METHODS[cg_method](operator, rhs, steps=cg_steps, tol=cg_tol, progress=progress)

    info: dict = {
        "parameters": p, "damping": damping, "weight_decay": weight_decay, "curvature": curvature,
        "cg_method": cg_method, "scored_samples": m,
    }
    if projection_dim is not None:
        projection = gaussian_projection(p, int(projection_dim), seed=seed, device=fm.device, dtype=fm.dtype)
        solved, cg_info = solve(projection)  # rows: A^-1 R_r
        influence = per_sample_gradients(fm, scored, projection=solved, batch_size=batch_size, progress=progress)
        info["projection_dim"] = int(projection_dim)
    else:
        if min(m, p) * p > max_elements:
            raise ValueError(
                f"without a projection S needs {min(m, p)} CG solves of dimension P = {p} ({min(m, p) * p:.2e} "
                f"numbers > max_elements = {max_elements:.0e}); set projection_dim (e.g. 256)"
            )
        if p <= m:  # solve for A^-1 itself (symmetric), then S = G A^-1
            inverse, cg_info = solve(torch.eye(p, device=fm.device, dtype=fm.dtype))
            influence = per_sample_gradients(fm, scored, projection=inverse, batch_size=batch_size, progress=progress)
        else:
            gradients = per_sample_gradients(fm, scored, batch_size=batch_size, progress=progress)
            influence, cg_info = solve(gradients)
    info.update(cg_info)
    return SampleScores((influence / n).float().cpu(), method="whole_network_influence", info=info)


__all__ = ["CG_METHODS", "block_conjugate_gradient", "conjugate_gradient", "whole_network_influence"]
