"""Last-layer influence for heads too large to hold (issue 29): S projected to k dimensions, streamed (the scorers'
``projection_dim``, ``last_layer.py``).

The exact path (``influence.py``) forms the d x d Hessian of the head [W | b] (d = C (a+1)) and S of n x d; at
CIFAR-100's ResNet-18 head (a = 512, C = 100, d = 51,300, n = 50,000) those are 21 GB and 10 GB. Here neither
exists. H is symmetric, so the projected influence is

    S_i P = (1/n) g_i^T (H^-1 P),    g_i = r_i (x) u_i,  r_i = p_i - e_{y_i},  P of shape (d, k),

and only k columns are solved; S P is then streamed over the samples in batches into an (n, k) float32 array.

Curvature (the scorers' ``hessian``):
  kfac   H ~ G (x) U + shift I with G = mean_j A_j (C x C), A_j = diag p_j - p_j p_j^T, and U = mean_j u_j u_j^T
         ((a+1) x (a+1)); the two eigendecompositions G = Q_G L_G Q_G^T, U = Q_U L_U Q_U^T invert it exactly:
         (Q_G (x) Q_U) diag(L_G (x) L_U + shift)^-1 (Q_G (x) Q_U)^T.
  ekfac  the same eigenbasis Q = Q_G (x) Q_U with the exact diagonal of Q^T H Q (George et al., 2018):
         mean_j diag(Q_G^T A_j Q_G) (x) (Q_U^T u_j)^2, one pass over the samples.
  cg     the exact H, by block CG (``whole_network.block_conjugate_gradient``) on ``influence.head_hvp`` products,
         preconditioned (split) by the EK-FAC matrix M: solves M^-1/2 H M^-1/2 z = M^-1/2 P, X = M^-1/2 z.
  exact  the Cholesky factor of the formed d x d H (small heads only: tests, or projecting a small head's S).

Sketch (``sketch``): ``gaussian``, P i.i.d. N(0, 1/k), drawn in blocks of ``COLUMN_BLOCK`` columns, each from its
own seeded generator (so P never exists beyond the columns being solved); ``kronecker``, P = P_G (x) P_U with
P_G (C, k1) and P_U (a+1, k2) Gaussian, k = k1 k2: with kfac/ekfac, S_i P is then computed in the eigenbasis from
r_i and u_i alone, k1 C (a+1) + k1 (a+1) k2 operations per sample instead of d k.

``removal_norms`` gives the eps of removed sets without S: the removed gradients' sum is a C x (a+1) matrix, so
||sum of removed S_i|| is one solve. The measured choice (ekfac, kronecker, k = 64) and its figures: docs/scoring.md,
"Large heads" (benchmarks/large_head.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from dataset_pruning.runtime import torch_generator
from dataset_pruning.scoring.influence import head_gradients, head_hessian, head_hvp, hessian_factor
from dataset_pruning.scoring.whole_network import block_conjugate_gradient

Curvature = Literal["exact", "kfac", "ekfac", "cg"]
Sketch = Literal["gaussian", "kronecker"]
COLUMN_BLOCK = 256  # Gaussian columns per seeded generator, and columns per CG solve
PASS_BYTES = 2**29  # at most this much of H^-1 P (float64) per pass over the samples
GRADIENT_BYTES = 2**26  # at most this much of per-sample gradients (float64) per product with H^-1 P


@dataclass
class KroneckerEigen:
    """M = (Q_G (x) Q_U) diag(values) (Q_G (x) Q_U)^T: q_g (C, C), q_u (a+1, a+1), values (C, a+1), shift included."""

    q_g: torch.Tensor
    q_u: torch.Tensor
    values: torch.Tensor

    def apply(self, v: torch.Tensor, power: float = -1.0) -> torch.Tensor:
        """M^power times each row of ``v`` (k, d): shape (k, d)."""
        c, a1 = self.values.shape
        t = self.q_g.T @ v.reshape(-1, c, a1) @ self.q_u
        return (self.q_g @ (t * self.values**power) @ self.q_u.T).reshape(len(v), c * a1)


def kronecker_eigen(u: torch.Tensor, p: torch.Tensor, shift: float, *, corrected: bool,
                    batch_size: int = 1024) -> KroneckerEigen:
    """K-FAC (``corrected=False``) or EK-FAC eigenbasis and values of the mean head Hessian plus ``shift`` I, from
    u (n, a+1) and p (n, C), summed in batches."""
    n, c = p.shape
    g = torch.zeros(c, c, dtype=u.dtype, device=u.device)
    f = torch.zeros(u.shape[1], u.shape[1], dtype=u.dtype, device=u.device)
    for i in range(0, n, batch_size):
        pb, ub = p[i : i + batch_size], u[i : i + batch_size]
        g += torch.diag(pb.sum(0)) - pb.T @ pb
        f += ub.T @ ub
    l_g, q_g = torch.linalg.eigh(g / n)
    l_u, q_u = torch.linalg.eigh(f / n)
    if not corrected:
        return KroneckerEigen(q_g, q_u, l_g.clamp_min(0)[:, None] * l_u.clamp_min(0)[None, :] + shift)
    values = torch.zeros(c, u.shape[1], dtype=u.dtype, device=u.device)
    for i in range(0, n, batch_size):
        pb, ub = p[i : i + batch_size], u[i : i + batch_size]
        curvature = pb @ (q_g * q_g) - (pb @ q_g) ** 2  # (b, C): diag(Q_G^T A_j Q_G)
        values += curvature.T @ (ub @ q_u) ** 2
    return KroneckerEigen(q_g, q_u, values / n + shift)


def gaussian_rows(d: int, start: int, stop: int, seed: int) -> torch.Tensor:
    """Columns start..stop of the Gaussian sketch P (d, k) with N(0, 1/k) entries, unscaled N(0, 1), as rows
    (stop - start, d) float64: block b of ``COLUMN_BLOCK`` columns comes from the generator seeded by (seed, b), so
    any column range is reproducible without drawing the others."""
    rows = []
    for block in range(start // COLUMN_BLOCK, -(-stop // COLUMN_BLOCK)):
        state = int(np.random.SeedSequence([int(seed), block]).generate_state(1)[0])
        drawn = torch.randn(COLUMN_BLOCK, d, generator=torch_generator(state), dtype=torch.float64)
        lo = max(start, block * COLUMN_BLOCK) - block * COLUMN_BLOCK
        rows.append(drawn[lo : min(stop, (block + 1) * COLUMN_BLOCK) - block * COLUMN_BLOCK])
    return torch.cat(rows)


def kronecker_shape(k: int, c: int, a1: int) -> tuple[int, int]:
    """(k1, k2) with k1 k2 = k: the divisor k1 of k nearest sqrt(k) (in ratio), preferring k1 <= C and k2 <= a+1."""
    return min(((k1, k // k1) for k1 in range(1, k + 1) if k % k1 == 0),
               key=lambda pair: (pair[0] > c or pair[1] > a1, abs(math.log(pair[0] / math.sqrt(k)))))


def kronecker_factors(k: int, c: int, a1: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P_G (C, k1) and P_U (a+1, k2), float64, with P_G (x) P_U of N(0, 1/k) entries."""
    k1, k2 = kronecker_shape(k, c, a1)
    generator = torch_generator(seed)
    p_g = torch.randn(c, k1, generator=generator, dtype=torch.float64)
    return p_g / math.sqrt(k), torch.randn(a1, k2, generator=generator, dtype=torch.float64)


def inverse_operator(u: torch.Tensor, p: torch.Tensor, curvature: str, shift: float, *, batch_size: int = 1024,
                     cg_steps: int = 100, cg_tol: float = 1e-6):
    """(solve, eigen): ``solve(rows)`` gives (H + shift I)^-1 (K-FAC / EK-FAC: its approximation) times each row of
    ``rows`` (k, d) as rows (k, d), with CG's info; ``eigen`` the Kronecker eigenbasis (None for ``exact``)."""
    n = len(u)
    if curvature == "exact":
        factor = hessian_factor(head_hessian(u, p, batch_size), shift)
        return (lambda rows: (torch.cholesky_solve(rows.T, factor).T, {})), None
    if curvature not in ("kfac", "ekfac", "cg"):
        raise ValueError(f"unknown curvature {curvature!r}; known: kfac, ekfac, cg, exact")
    eigen = kronecker_eigen(u, p, shift, corrected=curvature != "kfac", batch_size=batch_size)
    if curvature != "cg":
        return (lambda rows: (eigen.apply(rows), {})), eigen

    def hessian(v: torch.Tensor) -> torch.Tensor:  # M^-1/2 (H + shift I) M^-1/2 v, M the EK-FAC matrix
        v = eigen.apply(v, -0.5)
        out = shift * v
        for i in range(0, n, batch_size):
            out += head_hvp(v, u[i : i + batch_size], p[i : i + batch_size]) * (len(u[i : i + batch_size]) / n)
        return eigen.apply(out, -0.5)

    def solve(rows: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z, info = block_conjugate_gradient(hessian, eigen.apply(rows, -0.5), steps=cg_steps, tol=cg_tol)
        return eigen.apply(z, -0.5), info

    return solve, eigen


def removal_norms(u: torch.Tensor, p: torch.Tensor, y: torch.Tensor, removals, *, curvature: str = "cg",
                  shift: float = 1.5e-3, batch_size: int = 1024, cg_steps: int = 100, cg_tol: float = 1e-6) -> list:
    """eps = ||sum of the removed S_i||_2 of each index set in ``removals``, without S: (1/n) ||(H + shift I)^-1
    sum_i g_i||, each gradients' sum being the (C, a+1) matrix sum_i r_i u_i^T; one solve of all (``cg``: exact H)."""
    sums = torch.zeros(len(removals), p.shape[1], u.shape[1], dtype=u.dtype, device=u.device)
    for j, removed in enumerate(removals):
        removed = torch.as_tensor(np.asarray(removed), dtype=torch.long, device=u.device)
        for i in range(0, len(removed), batch_size):
            b = removed[i : i + batch_size]
            sums[j] += head_gradients(torch.ones_like(u[b, :1]), p[b], y[b]).T @ u[b]  # residuals r (b, C) times u
    solve, _ = inverse_operator(u, p, curvature, shift, batch_size=batch_size, cg_steps=cg_steps, cg_tol=cg_tol)
    return (solve(sums.flatten(1))[0].norm(dim=1) / len(u)).tolist()


def projected_influence(
    u: torch.Tensor,
    p: torch.Tensor,
    y: torch.Tensor,
    *,
    curvature: str = "ekfac",
    projection_dim: int = 64,
    sketch: str = "kronecker",
    shift: float = 1.5e-3,
    rows: torch.Tensor | None = None,
    cg_steps: int = 100,
    cg_tol: float = 1e-6,
    batch_size: int = 1024,
    seed: int = 0,
    progress: bool = False,
) -> tuple[torch.Tensor, dict]:
    """S P of shape (m, k) float32 on the CPU (m = len(rows), all n rows when None) and ``info``.

    u (n, a+1), p (n, C), y (n,): the head's inputs and labels (``influence.head_inputs``); H is their mean Hessian
    plus ``shift`` I (weight decay + damping) and 1/n uses their n. Memory: O((n + m) (a+1 + C + k) + C^2 +
    (a+1)^2), at most ``GRADIENT_BYTES`` of gradients and ``PASS_BYTES`` of H^-1 P (``exact`` also forms H, d x d).
    """
    n, c = p.shape
    a1 = u.shape[1]
    d, k = c * a1, int(projection_dim)
    rows = torch.arange(n, device=u.device) if rows is None else rows.to(u.device)
    m = len(rows)
    solve, eigen = inverse_operator(u, p, curvature, shift, batch_size=batch_size, cg_steps=cg_steps, cg_tol=cg_tol)
    out = torch.empty(m, k, dtype=torch.float32)
    info: dict = {"curvature": curvature, "projection_dim": k, "sketch": sketch, "scored_samples": m}
    bar = tqdm(total=m, desc="projected influence", disable=not progress, leave=False)
    if sketch == "kronecker":
        p_g, p_u = kronecker_factors(k, c, a1, seed)
        info["kronecker_shape"] = f"{p_g.shape[1]}x{p_u.shape[1]}"
        if eigen is not None and curvature != "cg":  # in the eigenbasis, from r and u only
            pg_t, pu_t = eigen.q_g.T @ p_g.to(u), eigen.q_u.T @ p_u.to(u)  # (C, k1), (a+1, k2)
            inverse = 1.0 / eigen.values
            for i in range(0, m, step := max(1, min(batch_size, GRADIENT_BYTES // (8 * p_g.shape[1] * a1)))):
                b = rows[i : i + step]
                r_t = head_gradients(torch.ones_like(u[b, :1]), p[b], y[b]) @ eigen.q_g  # (b, C): Q_G^T r
                t = (r_t[:, None, :] * pg_t.T[None]) @ inverse  # (b, k1, a+1)
                out[i : i + len(b)] = (((t * (u[b] @ eigen.q_u)[:, None, :]) @ pu_t).flatten(1) / n).float().cpu()
                bar.update(len(b))
            bar.close()
            return out, info
        sketch_rows = lambda lo, hi: torch.stack([torch.kron(p_g[:, j // p_u.shape[1]], p_u[:, j % p_u.shape[1]])
                                                  for j in range(lo, hi)]).to(u)
    elif sketch == "gaussian":
        sketch_rows = lambda lo, hi: gaussian_rows(d, lo, hi, seed).to(u) / math.sqrt(k)
    else:
        raise ValueError(f"unknown sketch {sketch!r}; known: gaussian, kronecker")
    per_pass = max(COLUMN_BLOCK, PASS_BYTES // (8 * d) // COLUMN_BLOCK * COLUMN_BLOCK)
    passes = -(-k // per_pass)
    bar.total = m * passes
    for lo in range(0, k, per_pass):
        hi = min(k, lo + per_pass)
        solved = []
        for j in range(lo, hi, COLUMN_BLOCK):
            x, cg_info = solve(sketch_rows(j, min(hi, j + COLUMN_BLOCK)))
            solved.append(x.float())
            for key, value in cg_info.items():  # operator vectors summed over the blocks, the worst of the rest
                info[key] = info.get(key, 0) + value if key == "cg_operator_vectors" else max(info.get(key, value), value)
        solved = torch.cat(solved).T  # (d, hi - lo): H^-1 P's columns, float32
        for i in range(0, m, step := max(1, min(batch_size, GRADIENT_BYTES // (8 * d)))):
            b = rows[i : i + step]
            out[i : i + len(b), lo:hi] = ((head_gradients(u[b], p[b], y[b]).float() @ solved) / n).cpu()
            bar.update(len(b))
    bar.close()
    info["passes"] = passes
    return out, info


__all__ = ["Curvature", "KroneckerEigen", "Sketch", "gaussian_rows", "kronecker_eigen", "kronecker_factors",
           "kronecker_shape", "inverse_operator", "projected_influence", "removal_norms"]
