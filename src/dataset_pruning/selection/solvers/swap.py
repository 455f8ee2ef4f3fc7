"""Greedy followed by swap local search: exchange one removed and one kept sample of the same class while that
lowers ||sum of removed S_i||_2 (Eq. 4), then iterated local search (random kicks, swap search again); for Eq. 3,
grow the greedy prefix and re-balance it by swaps while the norm stays within eps. The moves live in ``moves.py``
(``swap_refine``, ``perturb_and_refine``, ``greedy_prefix_mask``, ``grow_within_eps``), which other solvers share.

Budgets are counts by default (swaps, fruitless blocks, failed kicks), so a seed gives the same set on any machine
load; a wall-clock budget is an optional extra stop.
"""

from __future__ import annotations

import numpy as np

from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.solvers.greedy import greedy_cardinality
from dataset_pruning.selection.solver_registry import SOLVERS, Solver, check_count
from dataset_pruning.selection.products import row_squares
from dataset_pruning.selection.clock import deadline_after, share, time_left
from dataset_pruning.selection.solvers.moves import greedy_prefix_mask, grow_within_eps, perturb_and_refine, swap_refine


@SOLVERS.register("swap")
class SwapSolver(Solver):
    """Greedy start, then 2-swap local search within classes, then iterated local search (Eq. 4); greedy prefix,
    then growth with swap re-balancing (Eq. 3). Stops on counts: a local optimum (``patience``), ``stall`` failed
    kicks in a row, ``max_kicks`` kicks in all; ``time_budget_s`` (None: no time limit, the default) is an
    optional extra stop. The seed drives the kicks: same seed, same selection, whatever the machine's load."""

    def __init__(
        self,
        seed: int = 0,
        time_budget_s: float | None = None,
        patience: int | None = 2,
        block: int | None = None,
        batch: int | None = None,
        stall: int = 200,
        kick: int = 3,
        max_kicks: int | None = 2000,
    ) -> None:
        super().__init__(seed, time_budget_s)
        self.patience, self.block, self.batch = patience, block, batch
        self.stall, self.kick = check_count("swap's stall", stall), check_count("swap's kick", kick, 1)
        self.max_kicks = check_count("swap's max_kicks", max_kicks, optional=True)

    def _refine(self, influence, mask, codes, deadline, squares):
        return swap_refine(
            influence, mask, codes, time_budget_s=time_left(deadline), patience=self.patience, block=self.block,
            squares=squares, trace=self.trace,
        )

    def remove_count(self, influence: np.ndarray, codes: np.ndarray, quota: np.ndarray) -> np.ndarray:
        deadline = deadline_after(self.time_budget_s)
        greedy_deadline = deadline_after(share(self.time_budget_s, 0.8))
        squares = row_squares(influence)
        mask = greedy_cardinality(influence, codes, quota, self.batch, squares, greedy_deadline)
        mask = self._refine(influence, mask, codes, deadline, squares)
        if self.stall > 0:
            mask = perturb_and_refine(
                influence, mask, codes, rng=numpy_rng(self.seed), stall=self.stall, kick=self.kick,
                max_kicks=self.max_kicks, deadline=deadline, patience=self.patience, block=self.block,
                squares=squares, trace=self.trace,
            )
        return np.flatnonzero(mask)

    def remove_within(self, influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray) -> np.ndarray:
        deadline = deadline_after(self.time_budget_s)
        prefix_deadline = deadline_after(share(self.time_budget_s, 0.5))
        trace, squares = self.trace, row_squares(influence)
        mask = greedy_prefix_mask(influence, eps, codes, caps, squares, self.batch, deadline=prefix_deadline)
        trace.record(-float(mask.sum()))
        refine = lambda trial: swap_refine(  # noqa: E731
            influence, trial, codes, time_budget_s=time_left(deadline), patience=self.patience, block=self.block,
            squares=squares,
        )
        mask = grow_within_eps(
            influence, mask, codes, caps, eps, deadline=deadline, refine=refine, squares=squares, trace=trace
        )
        return np.flatnonzero(mask)
