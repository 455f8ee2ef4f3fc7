"""Bucketed distributed selection (the journal version's distributed discrete optimisation) on Dask.

The samples are split into ``buckets`` random buckets (class-stratified: each bucket gets its share of every
class), each bucket's Eq. 4 is solved by the ``inner`` solver on a Dask worker with the bucket's share of the
quota, the removed sets are merged, and swap local search refines the union on the full S (``refine_s``).
Eq. 3 is answered by bisection on the count with the bucketed Eq. 4 solve, then growth within eps.

Dask: ``scheduler_address`` names an existing scheduler; otherwise a ``dask.distributed.LocalCluster`` with
``n_workers`` workers is started for the solve and closed after it. ``use_dask: false`` runs the same buckets in
a loop (same result for a fixed seed; the tests check it).

Budgets are counts (the inner solver's, swap refinement to a local optimum, at most log2(n) bisection probes), so
a seed gives the same set whatever the load or the workers' speed; ``refine_s`` (the global refinement) and
``time_budget_s`` (Eq. 3's whole solve) are optional wall-clock stops (None: no time limit, the default).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.solver_registry import SOLVERS, Solver, build_solver, check_count, check_time_budget
from dataset_pruning.selection.budgets import apportion
from dataset_pruning.selection.objective import removal_norm
from dataset_pruning.selection.products import row_squares
from dataset_pruning.selection.clock import deadline_after, share
from dataset_pruning.selection.solvers.count_search import count_search
from dataset_pruning.selection.solvers.moves import greedy_prefix_mask, swap_refine


def split_buckets(codes: np.ndarray, quota: np.ndarray, buckets: int, seed: int):
    """[(indices of bucket b, quota of bucket b (G,))]: random class-stratified buckets, quotas apportioned by
    largest remainder so every class's total is exact."""
    rng = numpy_rng(seed)
    members = [rng.permutation(np.flatnonzero(codes == g)) for g in range(len(quota))]
    parts = [[np.array_split(group, buckets)[b] for group in members] for b in range(buckets)]
    bucket_quota = np.zeros((buckets, len(quota)), dtype=np.int64)
    for g, q in enumerate(quota):
        bucket_quota[:, g] = apportion(int(q), np.array([len(parts[b][g]) for b in range(buckets)]))
    return [(np.concatenate(parts[b]).astype(np.int64), bucket_quota[b]) for b in range(buckets)]


def solve_bucket(rows: np.ndarray, bucket_codes: np.ndarray, bucket_quota: np.ndarray, inner: str,
                 options: dict[str, Any]) -> np.ndarray:
    """One bucket's Eq. 4 (runs on a worker): local indices of the removed rows."""
    import dataset_pruning.selection  # noqa: F401  (registers every solver on the worker)

    solver = build_solver(inner, options)
    # a group with fewer members than buckets is absent from some: the inner solver sees the present ones only
    present, local_codes = np.unique(bucket_codes, return_inverse=True)
    return np.asarray(solver.cardinality(rows, bucket_quota[present], local_codes.reshape(-1)), dtype=np.int64)


@SOLVERS.register("bucketed")
class BucketedSolver(Solver):
    """Buckets solved in parallel on Dask, merged, refined globally."""

    def __init__(
        self,
        seed: int = 0,
        inner: str = "hybrid",
        inner_options: dict[str, Any] | None = None,
        buckets: int = 8,
        refine_s: float | None = None,
        use_dask: bool = True,
        scheduler_address: str | None = None,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        processes: bool = False,
        time_budget_s: float | None = None,
    ) -> None:
        if inner == "bucketed":
            raise ValueError("bucketed: the inner solver cannot be 'bucketed' itself")
        check_count("bucketed's buckets", buckets, 1)
        # built once here so that an unknown inner solver or option fails now (listing the known ones), not
        # on the workers after training and scoring; constructors have no side effects
        build_solver(inner, {"seed": seed, **dict(inner_options or {})})
        super().__init__(seed, time_budget_s)
        self.inner, self.inner_options, self.buckets = inner, dict(inner_options or {}), int(buckets)
        self.refine_s = check_time_budget("bucketed's refine_s", refine_s)
        self.use_dask, self.scheduler_address = use_dask, scheduler_address
        self.n_workers, self.threads_per_worker, self.processes = n_workers, threads_per_worker, processes
        self.bucket_seconds, self.merged_objective = None, None

    def _client(self):
        from dask.distributed import Client, LocalCluster

        if self.scheduler_address:
            return Client(self.scheduler_address), None
        cluster = LocalCluster(
            n_workers=self.n_workers, threads_per_worker=self.threads_per_worker, processes=self.processes,
            dashboard_address=":0",
        )
        return Client(cluster), cluster

    def _solve_buckets(self, influence, codes, quota) -> np.ndarray:
        plan = [(idx, q) for idx, q in split_buckets(codes, quota, max(1, min(self.buckets, len(influence))),
                                                     self.seed) if len(idx)]
        jobs = [
            (np.ascontiguousarray(influence[idx]), codes[idx], q, self.inner, {"seed": self.seed + b, **self.inner_options})
            for b, (idx, q) in enumerate(plan)
        ]
        start = time.perf_counter()
        if self.use_dask:
            client, cluster = self._client()
            try:
                blocks = client.scatter([job[0] for job in jobs])  # the bucket rows travel once, as data
                futures = [client.submit(solve_bucket, block, *job[1:], pure=False) for block, job in zip(blocks, jobs)]
                local = client.gather(futures)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
        else:
            local = [solve_bucket(*job) for job in jobs]
        self.bucket_seconds = time.perf_counter() - start
        mask = np.zeros(len(influence), dtype=bool)
        for (idx, _), removed in zip(plan, local):
            mask[idx[removed]] = True
        return mask

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        trace = self.trace
        mask = self._solve_buckets(influence, codes, quota)
        self.merged_objective = removal_norm(influence, np.flatnonzero(mask))
        trace.record(self.merged_objective)
        mask = swap_refine(influence, mask, codes, time_budget_s=self.refine_s, trace=trace)
        return np.flatnonzero(mask)

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        deadline = deadline_after(self.time_budget_s)
        prefix_deadline = deadline_after(share(self.time_budget_s, 0.5))
        trace = self.trace
        squares = row_squares(influence)
        best = greedy_prefix_mask(influence, eps, codes, caps, squares, deadline=prefix_deadline)
        lo, hi = int(best.sum()), int(caps.sum())
        trace.record(-float(lo))
        refine = lambda trial: swap_refine(influence, trial, codes, time_budget_s=self.refine_s, squares=squares)  # noqa: E731
        best = count_search(
            influence, eps, codes, caps, lambda quota: refine(self._solve_buckets(influence, codes, quota)), refine,
            best=best, hi=hi, squares=squares, deadline=deadline, trace=trace,
        )
        return np.flatnonzero(best)
