"""Last-layer parameter influence of Dataset Pruning (Yang et al., ICLR 2023, Eq. 2).

For the linear head theta = [W | b] (C x (a+1), flattened row-major, d = C (a+1)) of a model trained by ERM,
removing sample i moves the minimiser by about

    S_i = (1/n) H^-1 grad L(z_i, theta),    H = (1/n) sum_j hess L(z_j, theta) + (weight_decay + damping) I,

with L the cross-entropy. With features u = [h; 1] and probabilities p, grad L(z_i) = (p_i - e_{y_i}) (x) u_i and
hess L(z_i) = (diag p_i - p_i p_i^T) (x) u_i u_i^T (Kronecker products), so both are formed in closed form, in
batches, without a Python loop over samples. The sign convention: S_i is the parameter change caused by removing
z_i, so ``||sum of removed S_i||_2`` is the paper's eps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated

import torch
from pydantic import Field
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.models.base import Classifier, feature_batches
from dataset_pruning.runtime import release_pages, resolve_device, torch_generator

BLOCK_BATCHES = 16  # batches per block of the Hessian's sum (the unit a shard is made of)


@torch.no_grad()
def head_inputs(model: Classifier, data: TensorData, batch_size: int = 1024, device: str = "auto"):
    """Features u = [h; 1] of shape (n, a+1) and softmax probabilities p of shape (n, C), float64 on ``device``.

    Both are allocated once and filled batch by batch: small per-batch results kept between the large, freed
    activations pinned glibc's heap, and the pass rose by 1.3 GB at n = 60,000 (docs/scale.md, "Memory"). Inputs
    memory-mapped from a file leave the resident set after the pass (``runtime.release_pages``)."""
    dev = resolve_device(device)
    n = len(data)
    u = p = None
    for i, h in feature_batches(model, data.x, batch_size, dev):
        logits = model.head(h)
        if u is None:
            u = torch.ones(n, h.shape[1] + 1, dtype=torch.float64, device=dev)
            p = torch.empty(n, logits.shape[1], dtype=torch.float64, device=dev)
        u[i : i + len(h), :-1] = h
        p[i : i + len(h)] = torch.softmax(logits.double(), dim=1)
    release_pages(data.x)
    return u, p


def head_gradients(u: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients of the cross-entropy w.r.t. [W | b]: shape (n, C (a+1))."""
    residual = p - torch.nn.functional.one_hot(y.to(p.device), p.shape[1]).to(p.dtype)
    return (residual[:, :, None] * u[:, None, :]).flatten(1)


PAIR_BYTES = 2**26  # at most this much (float64) of weighted features per GEMM in the Hessian's sums


def class_pair_weights(p: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The softmax curvature diag(p) - p p^T of each row of ``p`` (b, C) at the class pairs (first[k], second[k]):
    shape (b, k)."""
    weights = -p[:, first] * p[:, second]
    diagonal = first == second
    weights[:, diagonal] += p[:, first[diagonal]]
    return weights


def hessian_block_sums(u: torch.Tensor, p: torch.Tensor, batch_size: int = 1024) -> Iterator[torch.Tensor]:
    """Unnormalised cross-entropy Hessian w.r.t. [W | b] of each block of ``BLOCK_BATCHES`` batches of rows,
    each (d, d), each summed batch by batch from zero. Summed in order they give the same H whether the blocks
    were computed in one process or in shards on several (scoring/sharded.py): float sums depend on their order.

    The Hessian's (c, c') block is sum_j A_j[c, c'] u_j u_j^T with A_j = diag(p_j) - p_j p_j^T: for the
    C (C + 1) / 2 class pairs c <= c' of a batch, one GEMM U^T [A[:, c, c'] * U] (a+1 by pairs x (a+1)), the
    pairs c > c' by symmetry. Yields the blocks one by one (a generator: one process never holds them all).
    """
    n, a1 = u.shape
    c = p.shape[1]
    first, second = torch.triu_indices(c, c, device=u.device)
    pairs_per_product = max(1, PAIR_BYTES // (batch_size * a1 * u.element_size()))
    block_rows = BLOCK_BATCHES * batch_size
    for start in range(0, n, block_rows):
        pair_sums = torch.zeros(a1, len(first), a1, dtype=u.dtype, device=u.device)  # (a+1, pairs, a+1)
        for i in range(start, min(start + block_rows, n), batch_size):
            pb, ub = p[i : i + batch_size], u[i : i + batch_size]
            weights = class_pair_weights(pb, first, second)  # (b, pairs)
            for k in range(0, len(first), pairs_per_product):
                w = weights[:, k : k + pairs_per_product]
                weighted = (w[:, :, None] * ub[:, None, :]).flatten(1)  # (b, pairs x (a+1))
                pair_sums[:, k : k + w.shape[1]] += (ub.T @ weighted).view(a1, -1, a1)
        hessian = torch.empty(c, a1, c, a1, dtype=u.dtype, device=u.device)
        hessian[second, :, first] = pair_sums.permute(1, 2, 0)  # block (c', c): the transpose of (c, c')
        hessian[first, :, second] = pair_sums.permute(1, 0, 2)  # block (c, c'), last: diagonal blocks as computed
        yield hessian.reshape(c * a1, c * a1)


def head_hessian(u: torch.Tensor, p: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Mean cross-entropy Hessian w.r.t. [W | b], shape (d, d), without regularisation."""
    return mean_hessian(hessian_block_sums(u, p, batch_size), len(u))


def mean_hessian(block_sums: Iterable[torch.Tensor], n: int) -> torch.Tensor:
    """The blocks of ``hessian_block_sums`` (from one process or from every shard, in row order) added in order,
    divided by the n rows they cover: (d, d)."""
    blocks = iter(block_sums)
    total = next(blocks).clone()
    for block in blocks:
        total += block
    return total / n


def head_hvp(vectors: torch.Tensor, u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mean Hessian of the samples (u, p) times each row of ``vectors`` (k, d); shape (k, d).

    For each sample j: H_j v = A_j V u_j u_j^T with V the (C, a+1) view of v and A_j t = p_j * (t - p_j^T t): two
    matmuls and elementwise products, no (b, C, C) curvature (batched C x C matmuls thread poorly on the CPU).
    """
    c, a1 = p.shape[1], u.shape[1]
    k = len(vectors)
    t = (vectors.reshape(k * c, a1) @ u.T).reshape(k, c, -1)  # (k, C, b): V u_j
    pt = p.T[None]  # (1, C, b)
    s = pt * (t - (pt * t).sum(1, keepdim=True))  # (k, C, b): A_j V u_j
    return (s.reshape(k * c, -1) @ u).reshape(k, c * a1) / len(u)


def lissa_inverse_hvp(
    vectors: torch.Tensor,
    u: torch.Tensor,
    p: torch.Tensor,
    *,
    regularization: float,
    damping: Annotated[float, Field(gt=0)],  # keeps the recursion contracting
    scale: float,
    steps: int,
    repeats: int,
    batch_size: int,
    seed: int,
    progress: bool = True,
) -> torch.Tensor:
    """LiSSA estimate of (H + reg I + scale*damping I)^-1 v for each row of ``vectors`` (k, d).

    The recursion of Agarwal et al. as influence libraries write it: h <- v + (1 - damping) h - (H_B h) / scale
    with H_B the Hessian of a random minibatch B; the result is h / scale. It converges when ``scale`` exceeds the
    largest Hessian eigenvalue. When d < k the d x d operator is estimated once and applied to all rows.
    """
    d = vectors.shape[1]
    if d < len(vectors):  # the recursion is linear in v: estimate the d x d operator once, then apply it
        identity = torch.eye(d, dtype=vectors.dtype, device=vectors.device)
        operator = lissa_inverse_hvp(
            identity, u, p, regularization=regularization, damping=damping, scale=scale, steps=steps,
            repeats=repeats, batch_size=batch_size, seed=seed, progress=progress,
        )
        return vectors @ operator.T
    generator = torch_generator(seed)
    n = len(u)
    estimate = torch.zeros_like(vectors)
    bar = tqdm(total=steps * repeats, desc="LiSSA", unit="step", disable=not progress, leave=False)
    for _ in range(repeats):
        h = vectors.clone()
        for _ in range(steps):
            batch = torch.randint(0, n, (batch_size,), generator=generator).to(u.device)
            hvp = head_hvp(h, u[batch], p[batch]) + regularization * h
            h = vectors + (1.0 - damping) * h - hvp / scale
            bar.update()
        if not torch.isfinite(h).all():
            raise FloatingPointError(
                f"LiSSA diverged: raise lissa.scale (now {scale}) above the largest Hessian eigenvalue"
            )
        estimate += h / scale
    bar.close()
    return estimate / repeats


def influence_info(hessian: str, m: int, *, weight_decay: float, damping: float, lissa: dict | None = None,
                   projection_dim: int | None = None, sketch: str = "kronecker") -> dict:
    """The ``info`` of last-layer influence scoring: the Hessian path, the rows scored and the system solved."""
    damped = {"weight_decay": weight_decay, "damping": damping, "lissa": lissa}
    return {"hessian": hessian, "scored_samples": m, "effective_damping": effective_damping(hessian, **damped),
            "solves": solved_system(hessian, projection_dim=projection_dim, sketch=sketch, **damped)}


def hessian_factor(hessian: torch.Tensor, shift: float) -> torch.Tensor:
    """Cholesky factor of H + shift I (shift = weight decay + damping), lower triangular (d, d)."""
    return torch.linalg.cholesky(hessian + shift * torch.eye(len(hessian), dtype=hessian.dtype, device=hessian.device))


def damped_inverse(hessian: torch.Tensor, shift: float) -> torch.Tensor:
    """(H + shift I)^-1 through its Cholesky factor (``hessian_factor``): (d, d). Formed once (O(d^3)), it turns
    each batch's solve into one GEMM. By solving for the identity: ``torch.cholesky_inverse`` (LAPACK potri) took
    0.5-10.8 s at d = 1,290 on 2 shared cores, against 0.3 s."""
    factor = hessian_factor(hessian, shift)
    return torch.cholesky_solve(torch.eye(len(factor), dtype=factor.dtype, device=factor.device), factor)


def influence_rows(u: torch.Tensor, p: torch.Tensor, y: torch.Tensor, inverse: torch.Tensor, n: int,
                   batch_size: int):
    """(first row, S rows (b, d) float32 on the CPU) per batch of the samples (u, p, y): (1/n) g (H + shift I)^-1
    with ``inverse`` from ``damped_inverse``, g formed and multiplied batch by batch, so the float64 gradients and
    solutions of all rows never exist at once. In float64: a float32 product took half the time at n = 60,000 but
    moved S by 5.5e-7 (relative), enough to change two of the `quick` sweep's four Eq. 4 removed sets."""
    for i in range(0, len(u), batch_size):
        b = slice(i, i + batch_size)
        yield i, ((head_gradients(u[b], p[b], y[b]) @ inverse) / n).float().cpu()


LISSA_DEFAULTS = {"damping": 0.01, "scale": 25.0, "steps": 1000, "repeats": 1, "batch_size": 16}


def effective_damping(
    hessian: str = "exact", *, weight_decay: float = 5e-4, damping: float = 0.001, lissa: dict | None = None
) -> float:
    """What is added to the mean Hessian H before it is inverted: weight_decay + damping (exact), and
    weight_decay + scale * damping for LiSSA, whose fixed point h = v + (1 - damping) h - (H + wd) h / scale
    solves (H + wd + scale * damping) h / scale = v. With the paper's LiSSA (0.01, 25) that is 0.2505 at weight
    decay 5e-4, against 0.0015 on the exact path: LiSSA then answers a different, far more damped system."""
    if hessian == "lissa":
        opts = {**LISSA_DEFAULTS, **(lissa or {})}
        return float(weight_decay + opts["scale"] * opts["damping"])
    return float(weight_decay + damping)


SOLVED_BY = {"exact": "Cholesky (exact)", "lissa": "LiSSA (stochastic, truncated)", "kfac": "K-FAC (approximate)",
             "ekfac": "EK-FAC (approximate)",
             "cg": "EK-FAC-preconditioned block CG on Hessian-vector products (exact to cg_tol)"}


def solved_system(hessian: str = "exact", *, projection_dim: int | None = None, sketch: str = "kronecker",
                  **options) -> str:
    """A plain sentence of the system solved, for ``info`` and the logs (S, or S P with ``projection_dim``)."""
    total = effective_damping(hessian, **options)
    if projection_dim is None:
        return f"S_i = (1/n) (H + {total:.4g} I)^-1 grad l_i by {SOLVED_BY[hessian]}"
    return (f"S_i P = (1/n) (H + {total:.4g} I)^-1 grad l_i P, P a {sketch} sketch to k = {projection_dim}, "
            f"by {SOLVED_BY[hessian]}")


__all__ = ["LISSA_DEFAULTS", "SOLVED_BY", "class_pair_weights", "damped_inverse", "effective_damping",
           "head_gradients", "head_hessian", "head_hvp", "hessian_block_sums", "hessian_factor", "influence_info",
           "influence_rows", "lissa_inverse_hvp", "mean_hessian", "solved_system"]
