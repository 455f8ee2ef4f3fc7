"""Local-search moves the solvers share, on a removed set held as a bool mask (n,) with class codes (n,):

- ``swap_refine``: best-improvement 2-swap search within classes (swap, relaxation, hybrid, bucketed);
- ``perturb_and_refine``: iterated local search, random within-class kicks then ``swap_refine`` (swap);
- ``tabu_search``: swaps that may worsen the norm, with tabu tenures (hybrid's polish);
- ``greedy_prefix_mask`` and ``grow_within_eps``: Eq. 3's start from the greedy path and its growth within eps with
  re-balancing (swap, relaxation, bucketed, and ``count_search``).

A swap i (removed) <-> j (kept) changes ||r||^2 by  |S_i|^2 + |S_j|^2 - 2<r,S_i> + 2<r,S_j> - 2<S_i,S_j>.
With p = S r kept up to date, a block of b candidates on one side is scored against every sample of the other
side with one (n, b) product S S_I^T, never an n x n matrix; the best swap of the block is applied, the block
rescored, and so on. Candidates are ranked by their one-sided gain, so blocks deeper in the ranking rarely help:
the search stops after ``patience`` fruitless blocks per side (``patience: null`` checks every block: a certified
2-swap local optimum), after ``max_swaps`` swaps, or at the optional ``time_budget_s``.

Budgets are counts by default (swaps, fruitless blocks, failed kicks, tabu steps), so a seed gives the same set on
any machine load; a wall-clock budget is an optional extra stop.
"""

from __future__ import annotations

import numpy as np

from dataset_pruning.selection.objective import longest_feasible_prefix, removal_norm, removed_sum
from dataset_pruning.selection.products import matvec, row_squares
from dataset_pruning.selection.clock import deadline_after, expired, time_left
from dataset_pruning.selection.solvers.greedy import greedy_picks


def residual_state(influence: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, S r): the removed rows' sum r (d,) and every row's projection on it (n,), both float64, recomputed
    from scratch (the local searches update them per move and call this again against drift)."""
    residual = removed_sum(influence, mask)
    return residual, matvec(influence, residual)


def swap_refine(
    influence: np.ndarray,
    mask: np.ndarray,
    codes: np.ndarray,
    *,
    time_budget_s: float | None = None,
    patience: int | None = 2,
    block: int | None = None,
    max_swaps: int | None = None,
    squares: np.ndarray | None = None,
    trace=None,
) -> np.ndarray:
    """Best-improvement 2-swap local search within classes; returns the refined bool mask (n,) (a copy). Stops at
    a local optimum (every block checked, or ``patience`` fruitless blocks per side), after ``max_swaps`` swaps, or
    once the optional ``time_budget_s`` (None or inf: no time limit) is spent."""
    deadline = deadline_after(time_budget_s)
    n = len(influence)
    mask = mask.copy()
    squares = row_squares(influence) if squares is None else squares
    block = int(np.clip(20_000_000 // max(n, 1), 4, 64)) if block is None else int(block)
    residual, projections = residual_state(influence, mask)
    value = float(residual @ residual)
    if trace is not None:
        trace.record(np.sqrt(value))
    offsets, fruitless, done, swaps = [0, 0], [0, 0], [False, False], 0
    side = 0  # 0: the block holds removed samples (leaving), 1: kept samples (entering)
    while not expired(deadline) and (max_swaps is None or swaps < max_swaps) and not all(done):
        if done[side]:
            side = 1 - side
            continue
        inside = mask if side == 0 else ~mask
        members = np.flatnonzero(inside)
        gain = 2.0 * projections - squares if side == 0 else -(squares + 2.0 * projections)
        top = min(offsets[side] + block, members.size)
        head = np.argpartition(-gain[members], top - 1)[:top] if 0 < top < members.size else np.arange(members.size)
        ranked = members[head[np.argsort(-gain[members[head]], kind="stable")]]  # the best `top`, in order
        chunk = ranked[offsets[side] : offsets[side] + block]
        if chunk.size == 0 or members.size == n:
            done[side] = True
            continue
        columns = np.asarray(influence[chunk], dtype=np.float64)
        cross = (influence @ columns.T.astype(influence.dtype)).astype(np.float64)  # (n, b): <S_k, S_I>
        same = codes[:, None] == codes[chunk][None, :]
        improved = False
        while not expired(deadline) and (max_swaps is None or swaps < max_swaps):
            if side == 0:  # column i leaves, row j enters
                delta = (squares[chunk] - 2.0 * projections[chunk])[None, :] + (squares + 2.0 * projections)[:, None]
                valid = same & (~mask)[:, None] & mask[chunk][None, :]
            else:  # row i leaves, column j enters
                delta = (squares[chunk] + 2.0 * projections[chunk])[None, :] + (squares - 2.0 * projections)[:, None]
                valid = same & mask[:, None] & (~mask[chunk])[None, :]
            delta -= 2.0 * cross
            delta[~valid] = np.inf
            row, col = np.unravel_index(int(np.argmin(delta)), delta.shape)
            if not delta[row, col] < -max(1e-12 * value, 1e-300):
                break
            leave, enter = (chunk[col], row) if side == 0 else (row, chunk[col])
            mask[leave], mask[enter] = False, True
            leave_col = cross[:, col] if side == 0 else matvec(influence, np.asarray(influence[leave], np.float64))
            enter_col = cross[:, col] if side == 1 else matvec(influence, np.asarray(influence[enter], np.float64))
            projections += enter_col - leave_col
            residual += np.asarray(influence[enter], np.float64) - np.asarray(influence[leave], np.float64)
            swaps += 1
            if swaps % 64 == 0:  # resynchronise against drift of the incremental updates
                residual, projections = residual_state(influence, mask)
            value = float(residual @ residual)
            improved = True
            if trace is not None:
                trace.record(np.sqrt(value))
        if improved:
            offsets, fruitless, done = [0, 0], [0, 0], [False, False]
        else:
            offsets[side] += block
            fruitless[side] += 1
            done[side] = patience is not None and fruitless[side] >= patience
        side = 1 - side
    return mask


def perturb_and_refine(
    influence: np.ndarray,
    mask: np.ndarray,
    codes: np.ndarray,
    *,
    rng: np.random.Generator,
    stall: int,
    kick: int = 3,
    max_kicks: int | None = None,
    deadline: float | None = None,
    patience: int | None = 2,
    block: int | None = None,
    squares: np.ndarray | None = None,
    trace=None,
) -> np.ndarray:
    """Iterated local search from a swap local optimum: apply 1..``kick`` random within-class swaps, re-run
    ``swap_refine``, keep the result when it is better; stop after ``stall`` kicks in a row without progress,
    after ``max_kicks`` kicks in all (None: no cap), or at the optional ``deadline`` (perf_counter seconds)."""
    best = mask.copy()
    best_value = removal_norm(influence, best)
    groups = [np.flatnonzero(codes == g) for g in range(int(codes.max()) + 1)] if len(codes) else []
    movable = [g for g in groups if 0 < best[g].sum() < len(g)]
    fails = kicks = 0
    while movable and fails < stall and (max_kicks is None or kicks < max_kicks) and not expired(deadline):
        kicks += 1
        trial = best.copy()
        for _ in range(int(rng.integers(1, kick + 1))):
            g = movable[int(rng.integers(len(movable)))]
            out, into = rng.choice(g[trial[g]]), rng.choice(g[~trial[g]])
            trial[out], trial[into] = False, True
        trial = swap_refine(
            influence, trial, codes, time_budget_s=time_left(deadline), patience=patience, block=block, squares=squares
        )
        value = removal_norm(influence, trial)
        if value < best_value * (1 - 1e-12):
            best, best_value, fails = trial, value, 0
            if trace is not None:
                trace.record(value)
        else:
            fails += 1
    return best


class _GramRows:
    """Rows of the Gram matrix S S^T computed on demand and kept (float32 (k, n), at most ``cache_mb``): tabu
    search asks for the same few hundred candidates' rows again and again, never for the n x n matrix."""

    def __init__(self, influence: np.ndarray, cache_mb: float) -> None:
        self.influence, n = influence, len(influence)
        self.capacity = max(int(cache_mb * 2**20 // (4 * max(n, 1))), 2)
        self.slot = np.full(n, -1, dtype=np.int64)
        self.store = np.empty((0, n), dtype=np.float32)
        self.count = 0

    def rows(self, index: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """The rows (k, n) of S S^T for ``index`` (k,), float32, computing the missing ones (one product); only
        the entries at ``columns`` (b,), shape (k, b), when given (copies k x b, not k x n)."""
        missing = np.unique(index[self.slot[index] < 0])
        if self.count + missing.size > self.capacity:  # full: start over rather than track ages
            self.slot[:], self.count = -1, 0
            missing = np.unique(index)
        if missing.size:
            if self.store.shape[0] < self.count + missing.size:
                grown = np.empty((min(self.capacity, 2 * (self.count + missing.size)), self.store.shape[1]), np.float32)
                grown[: self.count] = self.store[: self.count]
                self.store = grown
            block = self.influence[missing]
            self.store[self.count : self.count + missing.size] = (block @ self.influence.T).astype(np.float32)
            self.slot[missing] = np.arange(self.count, self.count + missing.size)
            self.count += missing.size
        if columns is None:
            return self.store[self.slot[index]]
        return self.store[np.ix_(self.slot[index], columns)]


def _class_table(codes: np.ndarray, groups: int) -> np.ndarray:
    """The samples of every class, (groups, largest class size) int64, padded with n (a sentinel index)."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(groups + 1))
    sizes = np.diff(bounds)
    table = np.full((groups, int(sizes.max(initial=0))), len(codes), dtype=np.int64)
    for c in range(groups):
        table[c, : sizes[c]] = order[bounds[c] : bounds[c + 1]]
    return table


def _best_per_class(
    members: np.ndarray, side: np.ndarray, gain: np.ndarray, codes: np.ndarray, k: int, table: np.ndarray
) -> np.ndarray:
    """The (at most) k members of every class with the smallest ``gain``, by class, then gain, then index;
    members (s,) = flatnonzero(side), side bool (n,), table from ``_class_table`` -> indices (<= s,). The k-th
    smallest gain of each class comes from one partition of the padded table (no sort over all members)."""
    if members.size <= k:
        return members
    if np.all(codes[members] == codes[members[0]]):
        return members[np.argpartition(gain[members], k - 1)[:k]]
    if table.shape[1] < k:  # every class has fewer than k samples: all members qualify
        kth = np.full(len(table), np.inf)
    else:
        padded = np.where(np.append(side, False)[table], np.append(gain, np.inf)[table], np.inf)
        kth = np.partition(padded, k - 1, axis=1)[:, k - 1]  # inf where a class has fewer than k members
    pick = np.flatnonzero(side & (gain <= kth[codes]))  # the first k of each class, and any ties at the k-th
    order = pick[np.lexsort((gain[pick], codes[pick]))]
    sorted_codes = codes[order]
    first = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    rank = np.arange(order.size) - np.repeat(first, np.diff(np.r_[first, order.size]))
    return order[rank < k]


def tabu_search(
    influence: np.ndarray,
    mask: np.ndarray,
    codes: np.ndarray,
    *,
    rng: np.random.Generator,
    stall: int,
    max_steps: int | None = None,
    deadline: float | None = None,
    candidates: int = 100,
    tenure: tuple[int, int] = (5, 15),
    cache_mb: float = 512.0,
    squares: np.ndarray | None = None,
    trace=None,
) -> np.ndarray:
    """Tabu search over within-class swaps from ``mask`` (bool (n,)); returns the best mask seen (a copy).

    Every step takes the best swap between the ``candidates`` removed and kept samples with the best one-sided
    gains, even when it worsens the norm: that is how it walks out of the 2-swap local optima where swap search
    and random kicks stay (measured on the MNIST-1D S at ratio 0.9, docs/selection.md). Both moved samples are
    then tabu (may not move back) for a random number of steps drawn from ``tenure``, unless the move would reach
    a new best. Stops after ``stall`` steps without a new best, after ``max_steps`` steps in all (None: no cap),
    or at the optional ``deadline`` (perf_counter seconds)."""
    n = len(influence)
    squares = row_squares(influence) if squares is None else squares
    gram = _GramRows(influence, cache_mb)
    groups = int(codes.max()) + 1 if n else 1
    per_class = max(1, min(max(8, -(-int(candidates) // groups)), (gram.capacity - 2) // (2 * groups)))
    table = _class_table(codes, groups)
    mask, best = mask.copy(), mask.copy()
    residual, projections = residual_state(influence, mask)
    value = best_value = float(residual @ residual)
    frozen_until = np.zeros(n, dtype=np.int64)
    step = since_best = 0
    while since_best < stall and (max_steps is None or step < max_steps) and not expired(deadline):
        step += 1
        since_best += 1
        leave_all, enter_all = np.flatnonzero(mask), np.flatnonzero(~mask)
        if leave_all.size == 0 or enter_all.size == 0:
            break
        leave_gain, enter_gain = squares - 2.0 * projections, squares + 2.0 * projections  # ||r||^2 change, one side
        leave, enter = (_best_per_class(members, side, gain, codes, per_class, table) for members, side, gain in (
            (leave_all, mask, leave_gain), (enter_all, ~mask, enter_gain)
        ))
        cross = gram.rows(leave, enter).astype(np.float64)  # (a, b): <S_i, S_j>
        delta = leave_gain[leave][:, None] + enter_gain[enter][None, :] - 2.0 * cross
        delta[codes[leave][:, None] != codes[enter][None, :]] = np.inf
        frozen = (frozen_until[leave] > step)[:, None] | (frozen_until[enter] > step)[None, :]
        delta[frozen & (value + delta >= best_value * (1 - 1e-12))] = np.inf  # tabu, unless it sets a new best
        a, b = np.unravel_index(int(np.argmin(delta)), delta.shape)
        if not np.isfinite(delta[a, b]):
            continue  # every candidate pair is tabu or of different classes: let the tenures run out
        i, j = leave[a], enter[b]
        mask[i], mask[j] = False, True
        rows = gram.rows(np.array([i, j]))
        projections += rows[1].astype(np.float64) - rows[0].astype(np.float64)
        residual += np.asarray(influence[j], np.float64) - np.asarray(influence[i], np.float64)
        if step % 256 == 0:  # resynchronise against drift of the incremental updates
            residual, projections = residual_state(influence, mask)
        value = float(residual @ residual)
        frozen_until[[i, j]] = step + rng.integers(tenure[0], tenure[1] + 1, size=2)
        if value < best_value * (1 - 1e-12):
            best, best_value, since_best = mask.copy(), value, 0
            if trace is not None:
                trace.record(np.sqrt(value))
    return best


def grow_within_eps(
    influence: np.ndarray,
    mask: np.ndarray,
    codes: np.ndarray,
    caps: np.ndarray,
    eps: float,
    *,
    refine,
    squares: np.ndarray,
    deadline: float | None = None,
    trace=None,
) -> np.ndarray:
    """Eq. 3 from a feasible mask: add ``step`` greedy picks, re-balance by ``refine`` (a mask -> mask function),
    keep the result when its norm is <= eps; the step doubles on success and halves on failure (so it ends once a
    single pick fails or every class is full), or at the optional ``deadline``."""
    step = max(1, int(mask.sum()) // 8)
    while step >= 1 and not expired(deadline):
        counts = np.bincount(codes[mask], minlength=len(caps))
        if (caps - counts).sum() == 0:
            break
        residual = removed_sum(influence, mask)
        picks, _ = greedy_picks(
            influence, residual, ~mask, codes, caps - counts, limit=step, squares=squares, deadline=deadline
        )
        trial = mask.copy()
        trial[picks] = True
        if removal_norm(influence, trial) > eps:
            trial = refine(trial)
        if removal_norm(influence, trial) <= eps:
            mask = trial
            if trace is not None:
                trace.record(-float(mask.sum()))
            step *= 2
        else:
            step //= 2
    return mask


def greedy_prefix_mask(influence, eps, codes, caps, squares=None, batch=None, deadline=None) -> np.ndarray:
    """Eq. 3 start: the longest prefix of the greedy path (classes stopping at their caps) within eps, as a mask.
    The path runs through every removable sample, O(n^2 d / batch): past ``deadline`` its rest is one round."""
    order, _ = greedy_picks(
        influence, np.zeros(influence.shape[1]), np.ones(len(influence), bool), codes, caps, batch=batch,
        squares=squares, deadline=deadline,
    )
    mask = np.zeros(len(influence), dtype=bool)
    mask[longest_feasible_prefix(influence, order, eps)] = True
    return mask
