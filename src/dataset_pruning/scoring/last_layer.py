"""The last-layer influence scorers: S of Eq. 2 on the linear head, or its projection S P for heads too large to
hold, with one set of options (the curvature is an option, ``hessian``), and anything computed from S's rows.

    exact, lissa          S (n, d) (``influence.py``: Cholesky of the formed d x d H, or the paper's LiSSA)
    + projection_dim k    S P (n, k) through a seeded sketch P (``large_head.py``), never n x d
    kfac, ekfac, cg       S P only: the Kronecker-factored H, or the exact H by CG, never d x d nor n x d
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.models.base import Classifier
from dataset_pruning.runtime import all_finite
from dataset_pruning.scoring.base import SCORERS, SampleScores, Scorer, as_indices, scorer, scores_not_finite
from dataset_pruning.scoring.influence import (
    LISSA_DEFAULTS,
    damped_inverse,
    head_gradients,
    head_hessian,
    head_inputs,
    influence_info,
    influence_rows,
    lissa_inverse_hvp,
)
from dataset_pruning.scoring.large_head import Curvature, Sketch, projected_influence

Hessian = Literal[Curvature, "lissa"]  # exact, kfac, ekfac, cg, lissa
PROJECTED_ONLY = tuple(c for c in get_args(Curvature) if c != "exact")  # curvatures that give S P, never S
RowsOf = Callable[[int, int, Iterator[tuple[int, torch.Tensor]]], torch.Tensor]  # (m, d, batches) -> values


def check_curvature(hessian: str = "exact", projection_dim: int | None = None, **_) -> None:
    """Refuse a curvature and projection that do not go together (the options' types and ranges are the
    registry's): called by the scorer and by the parameter block, before any training."""
    if projection_dim is None and hessian in PROJECTED_ONLY:
        raise ValueError(f"hessian: {hessian} computes S projected (S P): set projection_dim (64 is the measured "
                         "choice, docs/scoring.md 'Large heads'), or use hessian: exact")
    if projection_dim is not None and hessian == "lissa":
        raise ValueError("hessian: lissa has no projected form: set projection_dim: null, or project with hessian: "
                         "ekfac, cg or exact")


def influence_batches(
    model: Classifier,
    train: TensorData,
    *,
    hessian: Hessian = "exact",
    weight_decay: float = 5e-4,
    damping: float = 0.001,
    lissa: dict | None = None,
    projection_dim: int | None = None,
    sketch: Sketch = "kronecker",
    cg_steps: int = 100,
    cg_tol: float = 1e-6,
    batch_size: int = 1024,
    max_exact_dim: int = 20000,
    indices=None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> tuple[int, int, Iterator[tuple[int, torch.Tensor]], dict]:
    """``hessian='exact'`` forms H (d x d), adds ``damping`` and inverts it by Cholesky; ``hessian='lissa'`` uses
    the stochastic recursion with ``lissa`` = {damping, scale, steps, repeats, batch_size} (the paper's choice;
    its damping adds scale * damping to H, 0.25 with the reference's 0.01 and 25: a different, much more damped
    answer than the exact path's; ``info`` says which matrix was inverted: ``effective_damping``).
    ``projection_dim`` = k gives S P (n, k), P a seeded ``sketch`` (``large_head.projected_influence``), with
    ``hessian`` exact, or kfac / ekfac (Kronecker-factored H) or cg (the exact H by ``cg_steps`` of block CG
    to ``cg_tol``), which never form d x d: heads too large to hold (d = 51,300 for CIFAR-100's ResNet-18).
    ``indices`` scores only these samples (rows in this order) against the full data's Hessian and n.

    Returns (m, d, batches, info): ``batches`` yields (first row, rows (b, d) float32 on the CPU) in row order,
    one batch at a time on the exact path (only the rows a caller keeps exist at once); LiSSA and the projection
    give one block of all m rows.
    """
    check_curvature(hessian, projection_dim)
    u, p = head_inputs(model, train, batch_size, device)
    n = len(train)
    rows = slice(None) if indices is None else as_indices(indices, n).to(u.device)
    scored = u[rows], p[rows], train.y.to(u.device)[rows]  # (m, a+1), (m, C), (m,): views when indices is None
    m, d = len(scored[0]), p.shape[1] * u.shape[1]
    if hessian == "exact" and d > max_exact_dim:
        raise ValueError(
            f"the head has d = {d} parameters; forming a {d} x {d} Hessian is too large (max_exact_dim = "
            f"{max_exact_dim}): use hessian: ekfac with projection_dim: 64 (docs/scoring.md, 'Large heads')"
        )
    info = influence_info(hessian, m, weight_decay=weight_decay, damping=damping, lissa=lissa,
                          projection_dim=projection_dim, sketch=sketch)
    if projection_dim is not None:
        values, projected = projected_influence(
            u, p, train.y.to(u.device), curvature=hessian, projection_dim=projection_dim, sketch=sketch,
            shift=weight_decay + damping, rows=None if indices is None else rows, cg_steps=cg_steps,
            cg_tol=cg_tol, batch_size=batch_size, seed=seed, progress=progress,
        )
        return m, projection_dim, iter([(0, values)]), {**info, **projected}
    if hessian == "exact":
        inverse = damped_inverse(head_hessian(u, p, batch_size), weight_decay + damping)
        batches = tqdm(influence_rows(*scored, inverse, n, batch_size), total=-(-m // batch_size),
                       desc="influence", disable=not progress, leave=False)
    else:
        opts = {**LISSA_DEFAULTS, **(lissa or {})}
        batches = iter([(0, (lissa_inverse_hvp(head_gradients(*scored), u, p, regularization=weight_decay,
                                               seed=seed, progress=progress, **opts) / n).float().cpu())])
    return m, d, batches, info


def last_layer_scorer(name: str, *, output: Literal["scalar", "vector"], keep: Literal["highest"] | None,
                      rows_of: RowsOf, summary: str) -> Scorer:
    """Register ``name``: a scorer that hands the rows of S (or S P) of ``influence_batches``, batch by batch, to
    ``rows_of(m, d, batches) -> values``. S itself (``last_layer_influence``) and its row norms (``influence_norm``)
    read one computation, with the options ``influence_batches`` declares (the registry reads them through
    ``functools.wraps``). ``summary`` heads the scorer's docstring."""

    @functools.wraps(influence_batches)
    def score(model: Classifier, train: TensorData, **options) -> SampleScores:
        m, d, batches, info = influence_batches(model, train, **options)
        return SampleScores(rows_of(m, d, batches), method=name, keep=keep, info=info)

    score.__doc__ = f"{summary}\n\n{inspect.cleandoc(influence_batches.__doc__)}"
    # named as the module attribute it is bound to (where ``rows_of`` is), so that it pickles by reference
    score.__name__ = score.__qualname__ = name
    score.__module__ = rows_of.__module__
    return scorer(name, output=output)(score)


def write_influence(path: str | Path, model: Classifier, train: TensorData, **options) -> np.ndarray:
    """S (or S P) of ``last_layer_influence`` with ``options``, written to the ``.npy`` at ``path`` batch by batch
    as it is computed, then memory-mapped read-only: shape (m, d), float32. S is never held in memory (at
    Fashion-MNIST's n = 60,000, d = 1,290: 0.31 GB the default run's peak no longer holds)."""
    m, d, batches, _ = influence_batches(model, train, **SCORERS.check("last_layer_influence", options))
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                     "shape": (m, d)})
        written = 0
        for i, block in batches:  # in row order
            assert i == written, (i, written)
            if not all_finite(block):
                raise scores_not_finite("last_layer_influence")
            block.numpy().tofile(handle)
            written += len(block)
    assert written == m, (written, m)
    return np.load(path, mmap_mode="r")


def influence_matrix(m: int, d: int, batches: Iterator[tuple[int, torch.Tensor]]) -> torch.Tensor:
    """S of shape (m, d), float32, from its batches of rows."""
    influence = torch.empty(m, d, dtype=torch.float32)
    for i, block in batches:
        influence[i : i + len(block)] = block
    return influence


last_layer_influence = last_layer_scorer(
    "last_layer_influence", output="vector", keep=None, rows_of=influence_matrix,
    summary="S of shape (n, d): the paper's parameter influence of each sample on the linear head (Eq. 2); S P of "
            "shape (n, k) with projection_dim.",
)


__all__ = ["Hessian", "PROJECTED_ONLY", "check_curvature", "influence_batches", "influence_matrix",
           "last_layer_influence", "last_layer_scorer", "write_influence"]
