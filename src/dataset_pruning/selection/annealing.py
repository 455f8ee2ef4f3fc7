"""Simulated annealing, the paper's solver (Sec. 4.2), implemented efficiently so the comparison is fair.

Eq. 4: state = a removed set with m_g samples of each group g, random start; a move swaps one removed and one
kept sample of the same group; energy = ||W^T S||_2. Eq. 3: state = a feasible removed set (within eps and the
class caps), empty start; a move adds a sample, drops one, or swaps one in and one out; energy = -|W|;
infeasible states are rejected.

Schedule: geometric cooling in *time*, T(t) = T0 * final_ratio^(t / time_budget_s), so the whole schedule runs
whatever the budget (a step-count schedule cut by a deadline would stop hot). T0 = median |energy change| of 256
random moves / -ln(initial_acceptance): a median uphill move is accepted with probability ``initial_acceptance``
at the start and with about initial_acceptance^(1/final_ratio) at the end. With ``steps`` set, the schedule runs
on move counts instead and is deterministic for a seed. Moves are proposed in batches and the first accepted one
is applied (later ones are discarded): exactly the sequential chain, at numpy speed.
"""

from __future__ import annotations

import math
import time

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.objective import SOLVERS, as_caps, as_quota, traced


class _Schedule:
    """Temperature by elapsed time (``steps`` None) or by move count; ``done`` when the budget is spent."""

    def __init__(self, start: float, final_ratio: float, time_budget_s: float, steps: int | None) -> None:
        self.start, self.final_ratio, self.budget, self.steps = start, final_ratio, time_budget_s, steps
        self.t0, self.moves = time.perf_counter(), 0

    def progress(self) -> float:
        if self.steps is not None:
            return self.moves / max(self.steps, 1)
        return (time.perf_counter() - self.t0) / max(self.budget, 1e-9)

    def temperature(self) -> float:
        return self.start * self.final_ratio ** min(self.progress(), 1.0)

    def done(self) -> bool:
        return self.progress() >= 1.0


@SOLVERS.register("annealing")
class AnnealingSolver:
    """The paper's baseline; options: time_budget_s, steps (None: time schedule), initial_acceptance,
    final_ratio, batch (proposals evaluated per numpy call)."""

    def __init__(
        self,
        seed: int = 0,
        time_budget_s: float = 60.0,
        steps: int | None = None,
        initial_acceptance: float = 0.3,
        final_ratio: float = 1e-3,
        batch: int = 64,
    ) -> None:
        if not 0.0 < initial_acceptance < 1.0 or not 0.0 < final_ratio <= 1.0:
            raise ValueError("annealing needs 0 < initial_acceptance < 1 and 0 < final_ratio <= 1")
        self.seed, self.time_budget_s, self.steps = seed, float(time_budget_s), steps
        self.initial_acceptance, self.final_ratio, self.batch = initial_acceptance, final_ratio, int(batch)
        self.trace = None

    def cardinality(self, influence: np.ndarray, m, groups: np.ndarray | None = None) -> np.ndarray:
        trace = traced(self)
        n = len(influence)
        codes, quota = as_quota(n, m, groups)
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
        residual = np.asarray(influence[order[removed_positions]].sum(axis=0, dtype=np.float64))
        energy = float(np.linalg.norm(residual))
        best, best_energy = order[removed_positions].copy(), energy
        trace.record(energy)

        def propose(k):
            g = rng.choice(len(quota), size=k, p=weights)
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

    def generalization(self, influence: np.ndarray, eps: float, groups=None, caps=None) -> np.ndarray:
        trace = traced(self)
        n = len(influence)
        codes, caps = as_caps(n, groups, caps)
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
                residual = np.asarray(influence[removed].sum(axis=0, dtype=np.float64))
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
                        or np.linalg.norm(influence[removed].sum(axis=0, dtype=np.float64)) <= eps
                    ):
                        best = np.flatnonzero(removed)
                        trace.record(-float(len(best)))
        return best
