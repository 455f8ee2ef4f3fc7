"""Exact solvers for small n, to measure the heuristics' optimality gap.

- Enumeration: every subset with the right per-class counts, scored through the n x n Gram matrix
  (||sum_R S_i||^2 = sum_{i,j in R} G_ij), in chunks. Used when the number of subsets is <= ``max_subsets``.
- Meet in the middle for one group, n <= ``max_split_n`` and d <= ``max_split_d``: both halves' subset sums
  and an exact nearest-neighbour search (k-d tree) for each size split.
- Otherwise a mixed-integer program solved by SCIP (``pyscipopt``): Eq. 4 as min t s.t. ||S^T W||^2 <= t,
  Eq. 3 as max sum W s.t. ||S^T W||^2 <= eps^2, W binary, per-class counts; S is rescaled to unit largest row
  so SCIP's tolerances mean something. ``status`` says whether SCIP proved optimality within ``node_limit``
  branch-and-bound nodes (and the optional ``time_limit_s``); ``gap`` is SCIP's relative gap (0 when proved).

Work limits are counts (subsets enumerated, nearest-neighbour queries, SCIP nodes), so the same instance gets the
same answer on any machine load; wall-clock limits are optional extra stops (None: no time limit, the default).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from dataset_pruning.selection.solver_registry import SOLVERS, Solver, check_count, check_time_budget
from dataset_pruning.selection.objective import removal_norm
from dataset_pruning.selection.clock import expired


def _subsets(codes: np.ndarray, counts: np.ndarray):
    """All index tuples with counts[g] members of group g (product of per-group combinations)."""
    per_group = [itertools.combinations(np.flatnonzero(codes == g).tolist(), int(k)) for g, k in enumerate(counts)]
    for parts in itertools.product(*per_group):
        yield tuple(itertools.chain.from_iterable(parts))


def count_subsets(codes: np.ndarray, counts: np.ndarray) -> int:
    sizes = np.bincount(codes, minlength=len(counts))
    return math.prod(math.comb(int(s), int(k)) for s, k in zip(sizes, counts))


def enumerate_best(gram: np.ndarray, codes: np.ndarray, counts: np.ndarray, chunk: int = 20000):
    """(best index tuple, its squared norm) over all subsets with the given per-group counts."""
    m = int(counts.sum())
    if m == 0:
        return (), 0.0
    best, best_value = None, math.inf
    iterator = _subsets(codes, counts)
    while True:
        block = np.fromiter(itertools.chain.from_iterable(itertools.islice(iterator, chunk)), dtype=np.int64)
        if block.size == 0:
            return best, best_value
        block = block.reshape(-1, m)
        values = gram[block[:, :, None], block[:, None, :]].sum(axis=(1, 2))
        k = int(np.argmin(values))
        if values[k] < best_value:
            best, best_value = tuple(block[k].tolist()), float(values[k])


def _subset_sums(rows: np.ndarray):
    """All 2^k subset sums of ``rows`` (k, d): (sums (2^k, d), sizes (2^k,), bitmasks (2^k,))."""
    sums = np.zeros((1, rows.shape[1]))
    sizes = np.zeros(1, dtype=np.int64)
    bits = np.zeros(1, dtype=np.int64)
    for i, row in enumerate(rows):
        sums = np.concatenate([sums, sums + row])
        sizes = np.concatenate([sizes, sizes + 1])
        bits = np.concatenate([bits, bits | (1 << i)])
    return sums, sizes, bits


def meet_in_the_middle(
    rows: np.ndarray, m: int, incumbent: np.ndarray, deadline: float | None = None, max_queries: int | None = None,
) -> tuple[np.ndarray, float, bool]:
    """Exact Eq. 4 for one group: split the rows in halves, enumerate each half's subset sums, and for every
    left sum a of size k find the right sum of size m - k nearest to -a with a k-d tree (exact nearest
    neighbour) closer than the best norm so far, starting from the ``incumbent``'s (which prunes most of the
    search; the incumbent is returned when nothing is closer). Size splits run from the most even outwards.
    O(2^(n/2)) memory; fast while d is small (k-d tree pruning fades beyond d ~ 16).

    Returns (removed indices, norm, complete): ``complete`` is False when ``max_queries`` (nearest-neighbour
    queries in all, counted in chunks of 16,384: a deterministic work limit; None: no limit) or the optional
    ``deadline`` (perf_counter seconds) stopped the search; the set is then the best found, not a proven optimum.
    At n <= 44 there are at most 2^22 queries (one per left subset sum)."""
    from scipy.spatial import cKDTree

    n = len(rows)
    h = n // 2
    left, right = _subset_sums(rows[:h]), _subset_sums(rows[h:])
    best_value, best = removal_norm(rows, incumbent), None
    splits = sorted(range(max(0, m - (n - h)), min(h, m) + 1), key=lambda k: abs(k - m * h / max(n, 1)))
    complete, queried = True, 0

    def stop() -> bool:
        return expired(deadline) or (max_queries is not None and queried >= max_queries)

    for k in splits:
        if stop():
            complete = False
            break
        a = left[1] == k
        b = right[1] == m - k
        if not a.any() or not b.any():
            continue
        tree, queries, bits = cKDTree(right[0][b]), -left[0][a], left[2][a]
        for start in range(0, len(queries), 16384):  # chunks, so that a limit is kept within a split too
            if start and stop():
                complete = False
                break
            queried += min(16384, len(queries) - start)
            distances, nearest = tree.query(
                queries[start : start + 16384], k=1, distance_upper_bound=best_value * (1 + 1e-12)
            )
            j = int(np.argmin(distances))
            if distances[j] < best_value:
                best_value = float(distances[j])
                best = (int(bits[start + j]), int(right[2][b][nearest[j]]))
    if best is None:
        return np.sort(np.asarray(incumbent, dtype=np.int64)), best_value, complete
    chosen = [i for i in range(h) if best[0] >> i & 1] + [h + i for i in range(n - h) if best[1] >> i & 1]
    return np.asarray(chosen, dtype=np.int64), best_value, complete


def fits_meet_in_the_middle(shape: tuple[int, int], groups: int, max_n: int = 44, max_d: int = 16) -> bool:
    """Whether ``meet_in_the_middle`` applies: one group, n <= max_n (2^(n/2) sums per half), d <= max_d."""
    return groups == 1 and 0 < shape[0] <= max_n and shape[1] <= max_d


def solve_small(
    influence: np.ndarray, codes: np.ndarray, quota: np.ndarray, incumbent, *, max_subsets: int,
    max_n: int = 44, max_d: int = 16, max_queries: int | None = None, deadline: float | None = None,
):
    """Eq. 4 without SCIP: enumeration when there are <= ``max_subsets`` subsets, else meet in the middle when it
    applies (``incumbent``: a callable giving a starting set, called only then). Returns (removed indices, norm,
    method, proven) or None when neither applies; ``proven`` is False when ``max_queries`` or the optional
    ``deadline`` cut meet in the middle."""
    rows = np.asarray(influence, dtype=np.float64)
    if count_subsets(codes, quota) <= max_subsets:
        best, value = enumerate_best(rows @ rows.T, codes, quota)
        return np.asarray(best, dtype=np.int64), math.sqrt(max(value, 0.0)), "enumeration", True
    if fits_meet_in_the_middle(rows.shape, len(quota), max_n, max_d):
        removed, value, proven = meet_in_the_middle(rows, int(quota[0]), incumbent(), deadline, max_queries)
        return removed, value, "meet in the middle", proven
    return None


@SOLVERS.register("exact")
class ExactSolver(Solver):
    """Enumeration up to ``max_subsets`` subsets, meet in the middle where it applies, SCIP beyond (``use_scip:
    false`` forbids it) within ``node_limit`` nodes; ``time_limit_s`` (None: no time limit) is an optional extra
    stop for SCIP. The incumbents (a swap solve) are step-budgeted too."""

    def __init__(
        self,
        seed: int = 0,
        max_subsets: int = 2_000_000,
        use_scip: bool = True,
        node_limit: int | None = 100_000,
        time_limit_s: float | None = None,
        max_split_n: int = 44,
        max_split_d: int = 16,
    ):
        super().__init__(seed)  # its wall-clock stop is SCIP's time_limit_s
        self.max_subsets, self.use_scip = check_count("exact's max_subsets", max_subsets), use_scip
        self.node_limit = check_count("exact's node_limit", node_limit, 1, optional=True)
        self.time_limit_s = check_time_budget("exact's time_limit_s", time_limit_s)
        self.max_split_n, self.max_split_d = max_split_n, max_split_d
        self.status, self.gap, self.dual_bound = None, None, None

    def _too_large(self, n: int) -> ValueError:
        return ValueError(
            f"exact solver: n = {n} has more than max_subsets = {self.max_subsets} subsets to enumerate and SCIP "
            "is not available (pip install pyscipopt) or use_scip is false; use a heuristic solver (swap)"
        )

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        trace = self.trace
        from dataset_pruning.selection.solvers.swap import SwapSolver

        small = solve_small(
            influence, codes, quota, max_subsets=self.max_subsets, max_n=self.max_split_n, max_d=self.max_split_d,
            incumbent=lambda: SwapSolver(seed=self.seed).cardinality(
                np.asarray(influence, dtype=np.float64), quota, codes
            ),
        )
        if small is not None:
            removed, self.dual_bound, method, _ = small
            self.status, self.gap = f"optimal ({method})", 0.0
        else:
            removed = self._scip(influence, codes, quota=quota)
        trace.record(removal_norm(influence, removed))
        return np.sort(removed)

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        trace = self.trace
        total = sum(count_subsets(codes, c) for c in _count_vectors(caps))
        if total <= self.max_subsets:
            rows = np.asarray(influence, dtype=np.float64)
            gram = rows @ rows.T
            for counts in sorted(_count_vectors(caps), key=lambda c: -int(c.sum())):  # largest counts first
                best, value = enumerate_best(gram, codes, counts)
                if best is not None and math.sqrt(max(value, 0.0)) <= eps:
                    # the largest feasible count; ties broken by the smallest norm among its count vectors
                    size = int(counts.sum())
                    for other in _count_vectors(caps):
                        if int(other.sum()) == size and not np.array_equal(other, counts):
                            cand, cand_value = enumerate_best(gram, codes, other)
                            if cand is not None and cand_value < value:
                                best, value = cand, cand_value
                    self.status, self.gap = "optimal (enumeration)", 0.0
                    removed = np.asarray(best, dtype=np.int64)
                    trace.record(-float(len(removed)))
                    return np.sort(removed)
            self.status, self.gap = "optimal (enumeration)", 0.0
            return np.empty(0, dtype=np.int64)
        removed = self._scip(influence, codes, caps=caps, eps=eps)
        trace.record(-float(len(removed)))
        return np.sort(removed)

    def _scip(self, influence, codes, *, quota=None, caps=None, eps=None) -> np.ndarray:
        if not self.use_scip:
            raise self._too_large(len(influence))
        try:
            from pyscipopt import Model, quicksum
        except ImportError:
            raise self._too_large(len(influence)) from None
        rows = np.asarray(influence, dtype=np.float64)
        n, d = rows.shape
        incumbent = None
        if quota is not None:  # scale so that a good solution (swap's) has objective 1: tolerances stay relative
            from dataset_pruning.selection.solvers.swap import SwapSolver

            incumbent = SwapSolver(seed=self.seed).cardinality(rows, quota, codes)
            scale = removal_norm(rows, incumbent)
        else:
            scale = float(eps)
        scale = scale if scale > 0 else (float(np.linalg.norm(rows, axis=1).max()) or 1.0)
        rows = rows / scale
        model = Model()
        model.hideOutput()
        if self.time_limit_s is not None:
            model.setParam("limits/time", float(self.time_limit_s))
        if self.node_limit is not None:
            model.setParam("limits/nodes", int(self.node_limit))
        model.setParam("numerics/feastol", 1e-9)
        model.setParam("limits/gap", 0.0)
        model.setParam("randomization/randomseedshift", int(self.seed))
        w = [model.addVar(vtype="B", name=f"w{i}") for i in range(n)]
        groups = quota if quota is not None else caps
        for g in range(len(groups)):
            members = quicksum(w[i] for i in np.flatnonzero(codes == g))
            model.addCons(members == int(quota[g]) if quota is not None else members <= int(caps[g]))
        if d <= n:  # z = S^T W, d extra variables
            z = [model.addVar(lb=None, name=f"z{k}") for k in range(d)]
            for k in range(d):
                model.addCons(z[k] == quicksum(float(rows[i, k]) * w[i] for i in range(n) if rows[i, k] != 0.0))
            square = quicksum(z[k] * z[k] for k in range(d))
        else:  # through the Gram matrix: n^2 terms
            gram = rows @ rows.T
            square = quicksum(float(gram[i, j]) * w[i] * w[j] for i in range(n) for j in range(n) if gram[i, j])
        if quota is not None:
            t = model.addVar(lb=0.0, name="t")
            model.addCons(square <= t)
            model.setObjective(t, "minimize")
        else:
            model.addCons(square <= (eps / scale) ** 2)
            model.setObjective(quicksum(w), "maximize")
        if incumbent is not None:
            start = model.createSol()
            chosen = set(incumbent.tolist())
            for i in range(n):
                model.setSolVal(start, w[i], 1.0 if i in chosen else 0.0)
            if d <= n:
                for k, value in enumerate(rows[incumbent].sum(axis=0)):
                    model.setSolVal(start, z[k], float(value))
            model.setSolVal(start, t, 1.0 + 1e-9)
            model.addSol(start, free=True)
        model.optimize()
        self.status = str(model.getStatus())
        self.gap = float(model.getGap()) if model.getNSols() else math.inf
        if model.getNSols() == 0:
            raise RuntimeError(
                f"SCIP found no solution within node_limit {self.node_limit} / time_limit_s {self.time_limit_s} "
                f"(status {self.status})"
            )
        if quota is not None:
            self.dual_bound = math.sqrt(max(model.getDualbound(), 0.0)) * scale
        solution = model.getBestSol()
        removed = np.asarray([i for i in range(n) if model.getSolVal(solution, w[i]) > 0.5], dtype=np.int64)
        if eps is not None:  # SCIP's feasibility tolerance: drop samples until the exact norm fits
            while removed.size and removal_norm(influence, removed) > eps:
                keep = np.argmin([removal_norm(influence, np.delete(removed, k)) for k in range(removed.size)])
                removed = np.delete(removed, keep)
        return removed


def _count_vectors(caps: np.ndarray) -> list[np.ndarray]:
    """Every per-group count vector 0 <= c_g <= caps[g]."""
    return [np.asarray(c, dtype=np.int64) for c in itertools.product(*[range(int(k) + 1) for k in caps])]
