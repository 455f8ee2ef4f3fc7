"""The default solver: the fast route first, the global route next, local search on the better of the two.

Eq. 4: (1) a start within a fraction of a second, refined by swap local search: whole-set greedy and the core
route of core.py (a few relaxation steps order the samples, greedy decides only a band around each class's
threshold), the better of the two; from ``core_n`` rows on greedy costs too much (O(m d sqrt(n))) and the core route
runs alone (measured: at n = 50,000 it is three times faster than greedy and within 0.2 %; on the 4,000-row MNIST-1D S
greedy is better, on low-d heavy-tailed S the core route); (2) with the time left,
the convex relaxation (FISTA) is rounded and repaired by swaps, which wins where greedy's one-at-a-time choices
paint it into a corner; small instances (n <= ``exact_n``) are instead solved exactly when that fits the budget
(enumeration, or meet in the middle for one group and d <= 16): there local search is weak (low-dimensional
instances are number-partitioning-like: swap and annealing stay 20-190 % above the optimum at n = 40, d = 8),
while the exact search takes seconds; (3) tabu search over swaps (moves.tabu_search) polishes the better set until
``stall`` steps bring no new best or ``tabu_steps`` steps are done: it walks out of the 2-swap local optima where random kicks and
swap repair (iterated local search, the polish before) stayed. Eq. 3: the swap route (greedy prefix, growth with swap
re-balancing) and, with the time left, the relaxation route (bisection on the count); the larger set wins. From
``core_n`` rows on (where the greedy path through all samples costs O(n^2 d / batch)), bisection on the count with
Eq. 4's start at every probe, then growth with swap re-balancing.

From ``pool_n`` rows on, Eq. 4 takes the pooled route instead (``_pooled``): swap descent within pools of
candidates (``pool.pool_descent``), with no relaxation and no tabu search, from the lower of each class's smallest
rows and the start of (1), except that while at most half is removed the start of (1) does not fall back to greedy
where the core route steps aside (``pool_start: auto``). On the real Fashion-MNIST S (n = 60,000, d = 1,290) the
route above spends most of its 105 s in a swap descent that pays a pass over S per swap; the relaxation certifies
nothing there, and from greedy's start (``pool_start: greedy``, the fallback at any ratio) the pooled descent reaches
the same set in 6.6 s, from the smallest rows a set within 0.3 % of its objective (Jaccard 0.99) in 0.7 s, greedy
being most of the 6.6 s; above half the smallest rows start far higher (0.90 against 0.19 at 90 %) and greedy's
start ends 15 % lower. On synthetic S, where the core route gives a start, the descent from it is the faster one
(docs/selection.md). ``pool_start: whitened`` starts instead from FISTA in the metric that weighs
every direction of S alike (``bounds.whitening``), rounded in norm order (``relaxation.round_in_order``): it ends
far lower (0.60x at 50 % there) by removing large rows that cancel, and the kept half retrains worse.

Every stage stops on counts (``core_iterations`` and ``iterations`` FISTA steps, swap search to a local optimum,
``exact_queries`` nearest-neighbour queries, ``stall`` / ``tabu_steps`` tabu steps), so a seed gives the same set
on any machine load; ``time_budget_s`` (None: no time limit, the default) is an optional extra stop for the whole
solve, of which the start may take half.
"""

from __future__ import annotations

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.solvers.bounds import relax_cardinality, whitening
from dataset_pruning.selection.solvers.core import core_cardinality
from dataset_pruning.selection.solvers.count_search import count_search
from dataset_pruning.selection.solvers.exact import solve_small
from dataset_pruning.selection.solvers.greedy import greedy_cardinality
from dataset_pruning.selection.solver_registry import SOLVERS, Solver, check_count
from dataset_pruning.selection.objective import removal_norm
from dataset_pruning.selection.products import row_squares
from dataset_pruning.selection.clock import deadline_after, expired, share, time_left
from dataset_pruning.selection.solvers.pool import pool_descent
from dataset_pruning.selection.solvers.relaxation import RelaxationSolver, round_in_order, round_relaxed
from dataset_pruning.selection.solvers.moves import swap_refine, tabu_search
from dataset_pruning.selection.solvers.swap import SwapSolver


POOL_STARTS = ("auto", "greedy", "whitened")  # the pooled route's starts besides each class's smallest rows


@SOLVERS.register("hybrid")
class HybridSolver(Solver):
    """greedy + swap, then relaxation + rounding + swap (or, for n <= ``exact_n``, the exact optimum when the
    search completes within ``exact_queries`` queries), then tabu search; step budgets, and ``time_budget_s``
    (None: no time limit) overall when given."""

    def __init__(
        self,
        seed: int = 0,
        time_budget_s: float | None = None,
        iterations: int = 300,
        patience: int | None = 2,
        stall: int = 2000,
        tabu_steps: int | None = 20_000,
        tabu_candidates: int = 100,
        tabu_tenure: tuple[int, int] = (5, 15),
        exact_n: int = 40,
        exact_subsets: int = 100_000,
        exact_queries: int | None = 2**22,
        chunk_rows: int = 65536,
        core_n: int = 20_000,
        core_iterations: int = 50,
        core_band: float = 0.2,
        pool_n: int | None = 20_000,
        pool_iterations: int = 50,
        pool: int = 128,
        pool_rounds: int | None = None,
        whiten: float = 1e-4,
        pool_start: str = "auto",
    ) -> None:
        super().__init__(seed, time_budget_s)
        self.iterations = check_count("hybrid's iterations", iterations)
        self.patience, self.stall = patience, check_count("hybrid's stall", stall)
        self.tabu_steps = check_count("hybrid's tabu_steps", tabu_steps, optional=True)
        self.exact_queries = check_count("hybrid's exact_queries", exact_queries, optional=True)
        self.tabu_candidates, self.tabu_tenure = int(tabu_candidates), tuple(int(t) for t in tabu_tenure)
        low_high = len(self.tabu_tenure) == 2 and 0 <= self.tabu_tenure[0] <= self.tabu_tenure[1]
        if self.tabu_candidates < 1 or not low_high:
            raise ValueError(
                "hybrid needs tabu_candidates >= 1 and tabu_tenure [low, high] with 0 <= low <= high (steps a moved "
                f"sample stays put), got {tabu_candidates} and {list(tabu_tenure)}"
            )
        self.exact_n, self.exact_subsets, self.chunk_rows = int(exact_n), int(exact_subsets), int(chunk_rows)
        self.core_n, self.core_iterations, self.core_band = int(core_n), int(core_iterations), float(core_band)
        self.pool_n = check_count("hybrid's pool_n", pool_n, optional=True)
        self.pool_iterations = check_count("hybrid's pool_iterations", pool_iterations)
        self.pool = check_count("hybrid's pool", pool, minimum=1)
        self.pool_rounds = check_count("hybrid's pool_rounds", pool_rounds, optional=True)
        if isinstance(whiten, bool) or not isinstance(whiten, (int, float)) or not 0 < whiten < np.inf:
            raise ValueError(
                f"hybrid's whiten must be a number > 0 (a fraction of S^T S's mean diagonal), got {whiten!r}"
            )
        self.whiten = float(whiten)
        if pool_start not in POOL_STARTS:
            raise ValueError(f"hybrid's pool_start must be one of {', '.join(POOL_STARTS)}, got {pool_start!r}")
        self.pool_start = pool_start
        self.status = None

    def _exact(self, influence, incumbent, codes, quota, deadline) -> tuple[np.ndarray, bool]:
        """(bool mask (n,), proven optimal) for a small instance: enumeration of at most ``exact_subsets`` subsets,
        else meet in the middle for at most ``exact_queries`` queries (and until the optional deadline);
        (incumbent, False) when neither applies or helps."""
        small = solve_small(
            influence, codes, quota, lambda: np.flatnonzero(incumbent), max_subsets=self.exact_subsets,
            max_queries=self.exact_queries, deadline=deadline,
        )
        if small is None:
            return incumbent, False
        removed, value, _, proven = small
        if value >= removal_norm(influence, incumbent):
            return incumbent, proven
        mask = np.zeros(len(influence), dtype=bool)
        mask[removed] = True
        return mask, proven

    def _start(self, influence, codes, quota, squares, deadline, trace=None, fallback=True) -> np.ndarray | None:
        """Eq. 4's start, a bool mask (n,): the better of whole-set greedy and the core route below ``core_n``
        rows, the core route alone from there on (greedy where it steps aside; None there without ``fallback``);
        each start is recorded as it ends."""
        starts = []

        def keep(mask):
            starts.append((removal_norm(influence, mask), len(starts), mask))
            if trace is not None:
                trace.record(starts[-1][0])

        greedy = lambda: greedy_cardinality(  # noqa: E731
            influence, codes, quota, squares=squares, deadline=deadline, chunk_rows=self.chunk_rows
        )
        if len(influence) < self.core_n:  # whole-set greedy is cheap here: it runs first, the core route after
            keep(greedy())
        if not expired(deadline):
            core = core_cardinality(
                influence, codes, quota, iterations=self.core_iterations, band=self.core_band,
                squares=squares, deadline=deadline, chunk_rows=self.chunk_rows,
            )
            if core is not None:
                keep(core)
        if not starts:  # the relaxation certified nothing: no direction to order by
            if not fallback:
                return None
            keep(greedy())
        return min(starts)[2]

    def _pooled(self, influence, codes, quota, squares, deadline, trace) -> np.ndarray:
        """Eq. 4 from ``pool_n`` rows on, a bool mask (n,): pooled swap descent from each class's smallest rows (at
        low ratios they nearly cancel: 0.0021 on the real Fashion-MNIST S at 0.3, where the whitened rounding gave
        0.01) or, where lower, a second start: by ``pool_start``, Eq. 4's start (``_start``; ``auto`` skips its
        greedy fallback while at most half is removed) or whitened FISTA (``pool_iterations`` steps) rounded in
        norm order."""
        smallest = np.zeros(len(influence), dtype=bool)  # each class's quota of smallest ||S_i||
        ascending = np.argsort(squares, kind="stable")
        for g, q in enumerate(quota):
            smallest[ascending[codes[ascending] == g][:q]] = True
        starts = [smallest]
        if self.pool_start == "whitened":
            weights = relax_cardinality(
                influence, codes, quota, self.pool_iterations, deadline, metric=whitening(influence, self.whiten)
            )[0]
            starts.insert(0, round_in_order(influence, weights, codes, quota, squares))
        else:
            fallback = self.pool_start == "greedy" or 2 * int(quota.sum()) > len(influence)
            first = self._start(influence, codes, quota, squares, deadline, fallback=fallback)
            if first is not None:
                starts.insert(0, first)
        value, _, mask = min((removal_norm(influence, m), k, m) for k, m in enumerate(starts))
        trace.record(value)
        return pool_descent(
            influence, mask, codes, pool=self.pool, max_rounds=self.pool_rounds, deadline=deadline, squares=squares,
            trace=trace,
        )

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        deadline = deadline_after(self.time_budget_s)
        start_deadline = deadline_after(share(self.time_budget_s, 0.5))
        trace = self.trace
        squares = row_squares(influence)
        self.status = "heuristic"
        if self.pool_n is not None and len(influence) >= self.pool_n:
            return np.flatnonzero(self._pooled(influence, codes, quota, squares, deadline, trace))

        def refine(mask):
            return swap_refine(
                influence, mask, codes, time_budget_s=time_left(deadline), patience=self.patience, squares=squares,
                trace=trace,
            )

        start = self._start(influence, codes, quota, squares, start_deadline, trace)
        best = refine(start)
        if len(influence) <= self.exact_n:
            best, proven = self._exact(influence, best, codes, quota, deadline)
            trace.record(removal_norm(influence, best))
            if proven:
                self.status = "optimal"
                return np.flatnonzero(best)
        elif not expired(deadline) and self.iterations > 0:
            weights, _, _, _ = relax_cardinality(influence, codes, quota, self.iterations, deadline)
            rounded = round_relaxed(influence, weights, codes, quota, squares, deadline=deadline)
            if not expired(deadline):
                rounded = swap_refine(
                    influence, rounded, codes, time_budget_s=time_left(deadline), patience=self.patience,
                    squares=squares,
                )
            if removal_norm(influence, rounded) < removal_norm(influence, best):
                best = rounded
                trace.record(removal_norm(influence, best))
        if self.stall > 0:
            best = tabu_search(
                influence, best, codes, rng=numpy_rng(self.seed), stall=self.stall, max_steps=self.tabu_steps,
                deadline=deadline, candidates=self.tabu_candidates, tenure=self.tabu_tenure, squares=squares,
                trace=trace,
            )
        return np.flatnonzero(best)

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        deadline = deadline_after(self.time_budget_s)
        trace = self.trace
        if len(influence) >= self.core_n:  # the greedy path through all n samples would cost O(n^2 d / batch)
            return self._bisect_count(influence, eps, codes, caps, deadline, trace)
        swap = SwapSolver(seed=self.seed, time_budget_s=share(self.time_budget_s, 0.5), patience=self.patience)
        best = swap.generalization(influence, eps, codes, caps)
        trace.record(-float(len(best)))
        if not expired(deadline) and self.iterations > 0:
            relaxed = RelaxationSolver(
                seed=self.seed, iterations=self.iterations, time_budget_s=time_left(deadline), patience=self.patience
            ).generalization(influence, eps, codes, caps)
            if len(relaxed) > len(best):
                best = relaxed
                trace.record(-float(len(best)))
        return np.sort(np.asarray(best, dtype=np.int64))

    def _bisect_count(self, influence, eps, codes, caps, deadline, trace) -> np.ndarray:
        """Eq. 3 for large n: bisection on the count t, each t an Eq. 4 start (``_start``) with the count
        apportioned over the classes' caps, feasible when its norm is <= eps; then growth with swap re-balancing."""
        squares = row_squares(influence)
        refine = lambda trial: swap_refine(  # noqa: E731
            influence, trial, codes, time_budget_s=time_left(deadline), patience=self.patience, squares=squares
        )
        best = count_search(
            influence, eps, codes, caps, lambda quota: self._start(influence, codes, quota, squares, deadline), refine,
            best=np.zeros(len(influence), dtype=bool), hi=int(caps.sum()), squares=squares, deadline=deadline,
            trace=trace,
        )
        return np.flatnonzero(best)
