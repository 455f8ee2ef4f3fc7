"""The budgets of a selection, in counts: m = round(ratio * n) (``removal_count``), per class and per group.

Budgets are per group (a class, a score stratum, a cluster, or a class x group cell; ``groups.py`` builds the
groups): Eq. 4 removes exactly ``quota[g]`` samples of group g (one group = plain Eq. 4); Eq. 3 removes at most
``cap[g]`` of group g (a floor of kept samples per group). Every solver honours both. Every split of a count over
groups rounds by one largest-remainder function, ``apportion``; CCS's coverage budget fills from the sparsest group
up (``allocate_from_sparsest``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np


def removal_count(n: int, ratio: float) -> int:
    """m = round(ratio * n); ratio must lie in (0, 1) and m in [1, n - 1] (nothing removed, or nothing left to
    train on, is refused here rather than as a ZeroDivisionError in training)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must lie strictly between 0 and 1 (the fraction removed), got {ratio}")
    m = int(round(ratio * n))
    if not 0 < m < n:
        what = "no sample" if m == 0 else "every sample"
        raise ValueError(
            f"ratio {ratio} of n = {n} training samples removes m = round({ratio * n:.4g}) = {m}, {what}; "
            f"choose a ratio from {1 / n:.3g} to {(n - 1) / n:.6g} (1 to n - 1 samples removed)"
        )
    return m


def group_codes(n: int, groups: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Labels of shape (n,) -> codes 0..G-1 (int64) and G; None -> one group."""
    if groups is None:
        return np.zeros(n, dtype=np.int64), 1
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"class labels must have shape ({n},) to match the influence rows, got {groups.shape}")
    _, codes = np.unique(groups, return_inverse=True)
    return codes.astype(np.int64), int(codes.max()) + 1 if n else 1


def as_quota(n: int, m, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n,), quota (G,)) from an int m (one group) or a per-group array; checks feasibility."""
    codes, g = group_codes(n, groups)
    quota = np.atleast_1d(np.asarray(m, dtype=np.int64))
    if groups is None and quota.size == 1:
        quota = quota.reshape(1)
    sizes = np.bincount(codes, minlength=g)
    if quota.shape != (g,) or (quota < 0).any() or (quota > sizes).any():
        raise ValueError(f"removal quota {quota.tolist()} does not fit group sizes {sizes.tolist()}")
    return codes, quota


def as_caps(n: int, groups: np.ndarray | None, caps) -> tuple[np.ndarray, np.ndarray]:
    """(codes (n,), caps (G,)); caps None -> every sample of a group may go."""
    codes, g = group_codes(n, groups)
    sizes = np.bincount(codes, minlength=g)
    caps = sizes.copy() if caps is None else np.minimum(np.asarray(caps, dtype=np.int64).reshape(g), sizes)
    if (caps < 0).any():
        raise ValueError(f"per-class caps must be >= 0, got {caps.tolist()}")
    return codes, caps


def class_quotas(labels: np.ndarray, ratio: float) -> np.ndarray:
    """Class-balanced Eq. 4 budget: m_c = ratio * n_c rounded by largest remainder so sum m_c = round(ratio n).

    labels : ndarray of shape (n_samples,). Returns int64 (n_classes,) in the order of ``np.unique(labels)``.
    """
    codes, g = group_codes(len(labels), labels)
    sizes = np.bincount(codes, minlength=g)
    return apportion(removal_count(len(labels), ratio), sizes, shares=ratio * sizes)


def apportion(total: int, sizes: np.ndarray, shares: np.ndarray | None = None) -> np.ndarray:
    """``total`` units split over groups of ``sizes`` (G,) by largest remainder, never above a size: int64 (G,)
    summing to min(total, sizes.sum()). ``shares`` (G,): each group's exact share (default: in proportion to the
    sizes, total * sizes / sizes.sum()); each group gets its share's floor, then one more unit goes to the largest
    remainders (ties in group order), and any unit left over to the groups with the most room. The one rounding
    of every budget: class quotas, cell quotas, Eq. 3's count over the class caps, a bucket's share of a class."""
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(min(max(total, 0), sizes.sum()))
    share = total * sizes / max(int(sizes.sum()), 1) if shares is None else np.asarray(shares, dtype=np.float64)
    quota = np.minimum(np.floor(share).astype(np.int64), sizes)
    for g in np.argsort(-(share - quota), kind="stable"):
        if quota.sum() >= total:
            break
        if quota[g] < sizes[g]:
            quota[g] += 1
    for g in np.argsort(-(sizes - quota), kind="stable"):  # rounding left units over: fill where room is left
        short = total - int(quota.sum())
        if short <= 0:
            break
        quota[g] += min(short, int(sizes[g] - quota[g]))
    return quota


def class_caps(labels: np.ndarray, floor: float) -> np.ndarray:
    """Class floor for Eq. 3: keep at least ceil(floor * n_c) of class c, so at most n_c - that may go."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"class_floor must lie in [0, 1] (the fraction of each class kept), got {floor}")
    codes, g = group_codes(len(labels), labels)
    sizes = np.bincount(codes, minlength=g)
    return sizes - np.ceil(floor * sizes - 1e-9).astype(np.int64)


def allocate_from_sparsest(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Split ``budget`` kept samples over groups of ``sizes`` (G,) from the sparsest group up: each group in turn
    gets min(its size, remaining budget // remaining groups) (CCS's ``bin_allocate``, Zheng et al. ICLR 2023);
    a rounding remainder goes to the groups with room left, largest room first. int64 (G,) summing to
    min(budget, sizes.sum())."""
    sizes = np.asarray(sizes, dtype=np.int64)
    budget = int(min(max(budget, 0), sizes.sum()))
    order = np.argsort(sizes, kind="stable")
    allocation = np.zeros(len(sizes), dtype=np.int64)
    left = budget
    for position, g in enumerate(order):
        take = min(int(sizes[g]), left // (len(sizes) - position))
        allocation[g] = take
        left -= take
    for g in np.argsort(-(sizes - allocation), kind="stable"):  # only when the floors left a remainder
        if left == 0:
            break
        extra = min(int(sizes[g] - allocation[g]), left)
        allocation[g] += extra
        left -= extra
    return allocation


def cell_codes(n: int, labels: np.ndarray | None, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The budget cells: (class, group) pairs -> codes 0..G-1 of shape (n,) and the class code of each cell (G,).
    labels None: one class; groups None: each class is one cell."""
    outer, _ = group_codes(n, labels)
    inner, _ = group_codes(n, groups)
    pairs, codes = np.unique(np.stack([outer, inner], axis=1), axis=0, return_inverse=True)
    return codes.reshape(n).astype(np.int64), pairs[:, 0].astype(np.int64)


def cell_quotas(
    n: int,
    ratio: float,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    budget: Literal["proportional", "coverage"] = "proportional",
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 4's removal quota per cell: (codes (n,), quota (G,)), quota summing to m = round(ratio * n).

    With ``labels`` each class first gets its class-balanced quota (``class_quotas``), else the whole set has m.
    Within a class the cells (``groups``) share it: ``proportional`` removes ratio x each cell (largest
    remainder); ``coverage`` keeps the class's kept budget spread from the sparsest cell up
    (``allocate_from_sparsest``, CCS's allocation), so sparse strata or clusters stay whole.
    """
    if budget not in ("proportional", "coverage"):
        raise ValueError(f"group_budget must be 'proportional' or 'coverage', got {budget!r}")
    codes, class_of_cell = cell_codes(n, labels, groups)
    sizes = np.bincount(codes, minlength=len(class_of_cell))
    outer_quota = class_quotas(labels, ratio) if labels is not None else np.array([removal_count(n, ratio)])
    quota = np.zeros(len(sizes), dtype=np.int64)
    for c, removed in enumerate(outer_quota):
        cells = np.flatnonzero(class_of_cell == c)
        if budget == "proportional":
            quota[cells] = apportion(int(removed), sizes[cells])
        else:
            quota[cells] = sizes[cells] - allocate_from_sparsest(sizes[cells], int(sizes[cells].sum() - removed))
    return codes, quota
