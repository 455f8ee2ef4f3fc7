"""Greedy solvers: grow the removed set one sample at a time, each step taking the sample that keeps
||sum S_i||_2 smallest.

Exact greedy costs one matrix-vector product S @ r, O(n d), per pick: too slow for n = 50,000. Here each round
computes the scores once, keeps a pool of the ``pool_factor * batch`` best candidates, and makes ``batch`` exact
greedy picks inside the pool, updating the pool's scores with one Gram column per pick (exactly, after each pick;
samples outside it wait for the next round, which starts early once the pool's best score is worse than the best
score left outside it at the round's start). ``batch=1`` is the textbook greedy.
"""

from __future__ import annotations

import time

import numpy as np

from dataset_pruning.selection.solver_registry import SOLVERS, Solver
from dataset_pruning.selection.objective import longest_feasible_prefix, removal_norm
from dataset_pruning.selection.products import matvec, row_squares


def auto_batch(picks: int) -> int:
    """About 64 rounds of score refreshes, with 32 to 256 picks per round (measured on real and synthetic S:
    smaller batches spend their time in O(n d) refreshes, larger pools go stale)."""
    return int(min(256, max(32, picks // 64)))


def greedy_picks(
    influence: np.ndarray,
    start: np.ndarray,
    eligible: np.ndarray,
    codes: np.ndarray,
    need: np.ndarray,
    *,
    sign: float = 1.0,
    limit: int | None = None,
    batch: int | None = None,
    pool_factor: int = 4,
    squares: np.ndarray | None = None,
    deadline: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to ``need[g]`` eligible rows of group g (``limit`` in all), each minimising
    ||start + sign * (sum of picked rows)||_2. Past ``deadline`` (perf_counter seconds) the remaining picks are
    made in one round, without rescoring, so a time budget is kept whatever n.

    influence : ndarray (n, d); start : (d,); eligible : bool (n,); codes : int64 (n,); need : int64 (G,).
    Returns (order of shape (k,), norms of shape (k,): the norm after each pick).
    """
    residual = np.array(start, dtype=np.float64)
    squares = row_squares(influence) if squares is None else squares
    available = eligible.copy()
    need = np.array(need, dtype=np.int64)
    total = int(need.sum()) if limit is None else int(min(limit, need.sum()))
    batch = auto_batch(total) if batch is None else max(1, int(batch))
    order, norms = [], []
    while len(order) < total:
        scores = squares + 2.0 * sign * matvec(influence, residual)  # ||r + sign S_i||^2 - ||r||^2
        candidates = np.flatnonzero(available & (need[codes] > 0))
        if candidates.size == 0:
            break
        b = min(batch, total - len(order))
        if deadline is not None and time.perf_counter() > deadline:  # out of time: the best-scored rest at once
            left = total - len(order)
            for g in np.flatnonzero(need > 0):
                member = candidates[codes[candidates] == g]
                take = int(min(need[g], left, member.size))
                chosen = member[np.argsort(scores[member], kind="stable")[:take]]
                order.extend(chosen.tolist())
                left -= take
                residual += sign * np.asarray(influence[chosen].sum(axis=0, dtype=np.float64))
                norms.extend([np.nan] * (take - 1) + [float(np.linalg.norm(residual))])
            break
        k = min(candidates.size, pool_factor * b)
        if k == candidates.size:
            pool, threshold = candidates, np.inf
        else:  # the pool and the best score left outside it (at the round's start)
            part = np.argpartition(scores[candidates], k)
            pool, threshold = candidates[part[:k]], scores[candidates[part[k]]]
        rows = np.asarray(influence[pool])  # S's dtype; Gram columns are formed only for the picked samples
        pool_groups = codes[pool]
        # the live pool's scores, +inf where a sample is picked or its group's need is met (one array: per pick
        # the loop is an argmin, a Gram column and an add, which keeps its Python overhead low)
        live = np.where(need[pool_groups] > 0, scores[pool], np.inf)
        current, taken = float(residual @ residual), []
        for step in range(b):
            best = int(np.argmin(live))
            value = live[best]
            if not np.isfinite(value) or (step > 0 and value > threshold):
                break  # the pool has gone stale: a sample outside it may now be better, so rescore all
            group = pool_groups[best]
            need[group] -= 1
            if need[group] == 0:
                live[pool_groups == group] = np.inf
            live[best] = np.inf
            current += value
            taken.append(best)
            norms.append(np.sqrt(max(current, 0.0)))
            live += 2.0 * (rows @ rows[best])  # <r, S_i> += sign <S_best, S_i>: the score moves by 2 <S_best, S_i>
        taken = np.asarray(taken, dtype=np.int64)
        available[pool[taken]] = False
        order.extend(pool[taken].tolist())
        residual += sign * rows[taken].sum(axis=0, dtype=np.float64)
    return np.asarray(order, dtype=np.int64), np.asarray(norms, dtype=np.float64)


def greedy_cardinality(
    influence: np.ndarray, codes: np.ndarray, quota: np.ndarray, batch: int | None = None, squares=None,
    deadline: float | None = None, chunk_rows: int = 65536, offset: np.ndarray | None = None,
) -> np.ndarray:
    """Eq. 4 by greedy, as a bool mask of shape (n,): minimises ||offset + sum of removed S_i|| (``offset`` (d,):
    the sum of samples already removed elsewhere, 0 by default). When more than half is removed it grows the kept
    set instead (n - m picks matching the total), which takes fewer steps and balances better.

    Beyond ``chunk_rows`` rows the greedy runs on interleaved chunks of at most that many rows, one after the
    other, each continuing from the residual the earlier chunks left and taking its share of every class's
    quota: greedy costs O(m d (pool + n / batch)), so chunks of n / k rows cut the refresh cost k-fold (measured
    at n = 10^6, d = 128: 64 chunks give 7,921 in 17 s where unchunked greedy needs minutes; at n = 50,000 four
    chunks cost 0.6 % of objective, hence the threshold). With a ``deadline``, a chunk that ran behind time makes
    the remaining chunks smaller, so that a late greedy finishes by cheaper chunks instead of one-shot picks."""
    n, d = influence.shape
    squares = row_squares(influence) if squares is None else squares
    sizes = np.bincount(codes, minlength=len(quota))
    removing = quota.sum() <= (sizes - quota).sum()
    target, sign = (quota, 1.0) if removing else (sizes - quota, -1.0)
    residual = np.zeros(d) if offset is None else np.array(offset, dtype=np.float64)
    if not removing:
        residual += np.asarray(influence.sum(axis=0, dtype=np.float64))
    picked, seen = np.zeros(n, dtype=bool), np.zeros(len(quota), dtype=np.int64)
    remaining, chunk_rows = np.arange(n), max(int(chunk_rows), 1)
    while remaining.size:
        started = time.perf_counter()
        stride = -(-remaining.size // chunk_rows)
        rows = remaining[::stride]
        remaining = np.delete(remaining, np.s_[::stride]) if stride > 1 else remaining[:0]
        counts = np.bincount(codes[rows], minlength=len(quota))
        need = (target * (seen + counts)) // np.maximum(sizes, 1) - (target * seen) // np.maximum(sizes, 1)
        seen += counts
        sub = np.asarray(influence[rows]) if rows.size < n else influence
        order, _ = greedy_picks(
            sub, residual, np.ones(len(rows), dtype=bool), codes[rows], need, sign=sign, batch=batch,
            squares=squares[rows], deadline=deadline,
        )
        picked[rows[order]] = True
        if remaining.size:  # the next chunk continues from here (the gather holds the picked rows: 0.15 GB at 30,000)
            residual += sign * np.asarray(sub[order].sum(axis=0, dtype=np.float64))
        if deadline is not None and remaining.size:  # behind time: smaller chunks (cheaper per row) for the rest
            now = time.perf_counter()
            projected = (now - started) * remaining.size / rows.size
            if projected > deadline - now:
                chunk_rows = max(1024, int(chunk_rows * max(deadline - now, 0.0) / projected))
    return picked if removing else ~picked


@SOLVERS.register("greedy")
class GreedySolver(Solver):
    """Greedy for both problems (pool-batched; ``batch: 1`` is the exact textbook greedy)."""

    def __init__(self, seed: int = 0, batch: int | None = None, chunk_rows: int = 65536) -> None:
        super().__init__(seed)  # deterministic; seed accepted so every solver takes the same options
        self.batch, self.chunk_rows = batch, int(chunk_rows)

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        mask = greedy_cardinality(influence, codes, quota, self.batch, chunk_rows=self.chunk_rows)
        self.trace.record(removal_norm(influence, mask))
        return np.flatnonzero(mask)

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        """The longest prefix of the greedy path (each class stopping at its cap) whose norm stays within eps."""
        order, _ = greedy_picks(
            influence, np.zeros(influence.shape[1]), np.ones(len(influence), bool), codes, caps, batch=self.batch
        )
        removed = longest_feasible_prefix(influence, order, eps)
        self.trace.record(-float(len(removed)))
        return removed
