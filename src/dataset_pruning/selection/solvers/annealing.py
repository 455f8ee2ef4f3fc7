"""Simulated annealing, the paper's solver (Sec. 4.2), implemented efficiently so the comparison is fair.

Eq. 4: state = a removed set with m_g samples of each group g, random start; a move swaps one removed and one
kept sample of the same group; energy = ||W^T S||_2. Eq. 3: state = a feasible removed set (within eps and the
class caps), empty start; a move adds a sample, drops one, or swaps one in and one out; energy = -|W|;
infeasible states are rejected.

Schedule: geometric cooling in *moves*, T(k) = T0 * final_ratio^(k / steps) over ``steps`` proposed moves (the
default, STEPS), so the same seed gives the same chain and the same set on any machine load. T0 = median
|energy change| of 256 random moves / -ln(initial_acceptance): a median uphill move is accepted with probability
``initial_acceptance`` at the start and with about initial_acceptance^(1/final_ratio) at the end. ``time_budget_s``
(None: no time limit, the default) is an optional extra stop; with ``steps: null`` and a ``time_budget_s`` the
schedule runs in *time* instead, T(t) = T0 * final_ratio^(t / time_budget_s), so that the whole schedule fits any
budget (a step schedule cut by a deadline stops hot): the benchmarks' anytime curves use it; it is not
reproducible under load. Moves are proposed in batches and the first accepted one is applied (later ones are
discarded): exactly the sequential chain, at numpy speed.
"""

from __future__ import annotations

import math
import time

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.solver_registry import SOLVERS, Solver, check_count
from dataset_pruning.selection.objective import removal_norm, removed_sum
from dataset_pruning.selection.clock import deadline_after, expired

# Proposed moves of the default schedule. Measured on the MNIST-1D S (n = 4,000, d = 1,260) and a Gaussian
# (4,000, 330) at ratio 0.5 against the 60 s time schedule it replaced (docs/selection.md, "Reproducibility").
STEPS = 1_000_000


class _Schedule:
    """Temperature by move count (``steps``; the optional ``time_budget_s`` stops it early) or, with steps None,
    by elapsed time over ``time_budget_s``; ``done`` when the budget is spent."""

    def __init__(self, start: float, final_ratio: float, time_budget_s: float | None, steps: int | None) -> None:
        self.start, self.final_ratio, self.budget, self.steps = start, final_ratio, time_budget_s, steps
        self.deadline = deadline_after(time_budget_s) if steps is not None else None
        self.t0 = time.perf_counter() if steps is None else None
        self.moves = 0

    def progress(self) -> float:
        if self.steps is not None:
            return self.moves / max(self.steps, 1)
        return (time.perf_counter() - self.t0) / max(self.budget, 1e-9)

    def temperature(self) -> float:
        return self.start * self.final_ratio ** min(self.progress(), 1.0)

    def done(self) -> bool:
        return self.progress() >= 1.0 or expired(self.deadline)


@SOLVERS.register("annealing")
class AnnealingSolver(Solver):
    """The paper's baseline; options: steps (proposed moves of the schedule, STEPS by default; null: a schedule in
    time over time_budget_s), time_budget_s (None: no time limit; with steps, an extra stop), initial_acceptance,
    final_ratio, batch (proposals evaluated per numpy call)."""

    def __init__(
        self,
        seed: int = 0,
        time_budget_s: float | None = None,
        steps: int | None = STEPS,
        initial_acceptance: float = 0.3,
        final_ratio: float = 1e-3,
        batch: int = 64,
    ) -> None:
        if not 0.0 < initial_acceptance < 1.0 or not 0.0 < final_ratio <= 1.0:
            raise ValueError("annealing needs 0 < initial_acceptance < 1 and 0 < final_ratio <= 1")
        super().__init__(seed, time_budget_s)
        self.steps = check_count("annealing's steps", steps, 1, optional=True)
        if self.steps is None and not self.time_budget_s:
            raise ValueError(
                "annealing needs steps (a move-count schedule, reproducible; the default) or, with steps: null, a "
                f"time_budget_s > 0 for a schedule in time; got steps {steps!r} and time_budget_s {time_budget_s!r}"
            )
        check_count("annealing's batch", batch, 1)
        self.initial_acceptance, self.final_ratio, self.batch = initial_acceptance, final_ratio, int(batch)

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        trace = self.trace
        rng = numpy_rng(self.seed)
        sizes = np.bincount(codes, minlength=len(quota))
        # one array holding each group's members, the first quota[g] of each group's segment removed
        order = np.concatenate([rng.permutation(np.flatnonzero(codes == g)) for g in range(len(quota))])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        swappable = quota * (sizes - quota)
        if swappable.sum() == 0:
            return np.sort(np.concatenate([order[o : o + q] for o, q in zip(offsets, quota)]).astype(np.int64))
        weights = swappable / swappable.sum()
        removed_positions = np.concatenate([np.arange(o, o + q) for o, q in zip(offsets, quota)])
        residual = removed_sum(influence, order[removed_positions])
        energy = float(np.linalg.norm(residual))
        best, best_energy = order[removed_positions].copy(), energy
        trace.record(energy)

        cumulative = np.cumsum(weights)
        cumulative[np.flatnonzero(weights > 0)[-1]:] = np.inf  # rounding never picks a group without swaps

        def propose(k):
            # the group by inverse CDF: the same law as rng.choice(p=weights), at a tenth of its per-call cost
            g = np.searchsorted(cumulative, rng.random(k), side="right")
            a = offsets[g] + (rng.random(k) * quota[g]).astype(np.int64)
            b = offsets[g] + quota[g] + (rng.random(k) * (sizes[g] - quota[g])).astype(np.int64)
            candidate = residual[None, :] - influence[order[a]] + influence[order[b]]
            return a, b, candidate, np.linalg.norm(candidate, axis=1)

        scale = float(np.median(np.abs(propose(256)[3] - energy))) or 1e-300
        schedule = _Schedule(scale / -math.log(self.initial_acceptance), self.final_ratio, self.time_budget_s,
                             self.steps)
        k = 1
        while not schedule.done():
            temperature = schedule.temperature()
            a, b, candidate, energies = propose(k)
            accept = (energies <= energy) | (rng.random(k) < np.exp(-np.maximum(energies - energy, 0.0) / temperature))
            hits = np.flatnonzero(accept)
            used = k if hits.size == 0 else int(hits[0]) + 1
            schedule.moves += used
            if hits.size:
                h = int(hits[0])
                order[a[h]], order[b[h]] = order[b[h]], order[a[h]]
                residual, energy = candidate[h].astype(np.float64), float(energies[h])
                if energy < best_energy:
                    best, best_energy = order[removed_positions].copy(), energy
                    trace.record(energy)
            # batch size follows the acceptance rate: large when most moves are rejected
            k = min(self.batch, max(1, 2 * k)) if hits.size == 0 else max(1, used)
            if self.steps is not None:
                k = max(1, min(k, self.steps - schedule.moves))
        return np.sort(best.astype(np.int64))

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        trace, n = self.trace, len(influence)
        rng = numpy_rng(self.seed)
        removed = np.zeros(n, dtype=bool)
        counts = np.zeros(len(caps), dtype=np.int64)
        residual = np.zeros(influence.shape[1])
        best = np.empty(0, dtype=np.int64)
        # energy = -count: an uphill move drops one sample (energy change 1), so T0 = 1 / -ln(initial_acceptance)
        schedule = _Schedule(1.0 / -math.log(self.initial_acceptance), self.final_ratio, self.time_budget_s, self.steps)
        while not schedule.done():
            schedule.moves += 1
            if schedule.moves % 1024 == 0:  # resynchronise the running sum against rounding drift
                residual = removed_sum(influence, removed)
            temperature = schedule.temperature()
            i = int(rng.integers(n))
            if removed[i]:
                j = int(rng.integers(n))
                if not removed[j] and codes[j] == codes[i] and rng.random() < 0.5:  # swap: same size, same class
                    candidate = residual - influence[i] + influence[j]
                    if np.linalg.norm(candidate) <= eps:
                        removed[i], removed[j], residual = False, True, candidate
                elif rng.random() < math.exp(-1.0 / temperature):  # drop i: one fewer removed
                    removed[i], residual = False, residual - influence[i]
                    counts[codes[i]] -= 1
            elif counts[codes[i]] < caps[codes[i]]:
                candidate = residual + influence[i]
                if np.linalg.norm(candidate) <= eps:
                    removed[i], residual = True, candidate
                    counts[codes[i]] += 1
                    if counts.sum() > len(best) and (
                        np.linalg.norm(residual) <= eps * (1 - 1e-9)  # clear of rounding drift, else recheck
                        or removal_norm(influence, removed) <= eps
                    ):
                        best = np.flatnonzero(removed)
                        trace.record(-float(len(best)))
        return best
