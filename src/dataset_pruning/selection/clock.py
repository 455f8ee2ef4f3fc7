"""Budgets in time and the anytime trace of a solve.

Every solver stops on counts by default (moves, tabu steps, FISTA iterations, annealing steps, failed kicks,
enumerated subsets), so the same inputs and seed give the same selection on any machine load. A wall-clock
``time_budget_s`` is an optional extra stop (None, the default: no time limit); these three helpers are the only
way the solvers read the clock, and with no budget they never do.
"""

from __future__ import annotations

import math
import time


def deadline_after(time_budget_s: float | None) -> float | None:
    """The ``time.perf_counter()`` value at which a wall-clock budget ends, or None (no time limit)."""
    if time_budget_s is None or math.isinf(time_budget_s):
        return None
    return time.perf_counter() + max(float(time_budget_s), 0.0)


def expired(deadline: float | None) -> bool:
    """Whether an optional deadline (``deadline_after``) has passed; False, without reading the clock, for None."""
    return deadline is not None and time.perf_counter() >= deadline


def time_left(deadline: float | None) -> float | None:
    """Seconds left to an optional deadline (>= 0), or None (no time limit) for None."""
    return None if deadline is None else max(deadline - time.perf_counter(), 0.0)


def share(time_budget_s: float | None, fraction: float) -> float | None:
    """``fraction`` of an optional time budget (None stays None)."""
    return None if time_budget_s is None else fraction * float(time_budget_s)


class Trace:
    """The anytime curve of a solve: (seconds since start, best objective so far) pairs; Eq. 4 records the
    objective, Eq. 3 -count (lower is better in both). ``Solver`` starts one per solve (``solve_selection`` reads
    it)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.points: list[tuple[float, float]] = []

    def record(self, value: float) -> None:
        if not self.points or value < self.points[-1][1]:
            self.points.append((time.perf_counter() - self.start, float(value)))
