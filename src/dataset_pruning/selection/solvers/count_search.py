"""Eq. 3 through Eq. 4: bisection on the removed count, then growth within eps. The relaxation, hybrid (from
``core_n`` rows on) and bucketed solvers answer Eq. 3 this way, each with its own Eq. 4 solve per probe."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dataset_pruning.selection.budgets import apportion
from dataset_pruning.selection.objective import removal_norm
from dataset_pruning.selection.clock import expired
from dataset_pruning.selection.solvers.moves import grow_within_eps


def count_search(
    influence: np.ndarray,
    eps: float,
    codes: np.ndarray,
    caps: np.ndarray,
    solve: Callable[[np.ndarray], np.ndarray],
    refine: Callable[[np.ndarray], np.ndarray],
    *,
    best: np.ndarray,
    hi: int,
    squares: np.ndarray,
    deadline: float | None,
    trace,
) -> np.ndarray:
    """Bool mask (n,) within eps: bisection on the count t in (|best|, hi], each probe ``solve(quota)`` removing
    apportion(t, caps) (G,) as a bool mask, feasible when its norm is <= eps (at most log2(hi) probes, stopped at the
    deadline), then growth by greedy picks re-balanced by ``refine`` while the norm stays within eps."""
    lo = int(best.sum())
    while lo < hi and not expired(deadline):
        t = (lo + hi + 1) // 2
        mask = solve(apportion(t, caps))
        if removal_norm(influence, mask) <= eps:
            lo, best = int(mask.sum()), mask
            trace.record(-float(lo))
        else:
            hi = t - 1
    return grow_within_eps(
        influence, best, codes, caps, eps, deadline=deadline, refine=refine, squares=squares, trace=trace
    )
