"""hybrid's start at scale, the core route (selection/core.py), against whole-set greedy in the same run: objective
ratio and time, plus what sorting along the relaxation's direction alone gives (no band greedy).

    python benchmarks/core_route.py            # n = 50,000, d = 512 at ratios 0.3 / 0.5 / 0.9, then n = 10^6, d = 128
    python benchmarks/core_route.py --quick    # n = 10,000, d = 256 and n = 100,000, d = 128

1 BLAS thread; times are the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from selection import synthetic_influence  # benchmarks/selection.py, the same synthetic S


def best_time(fn, repeats: int):
    """(result of the last call, smallest wall time over ``repeats`` calls)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, min(times)


def main() -> None:
    from dataset_pruning.selection import removal_norm
    from dataset_pruning.selection.solvers.bounds import relax_cardinality
    from dataset_pruning.selection.solvers.core import core_cardinality
    from dataset_pruning.selection.solvers.greedy import greedy_cardinality
    from dataset_pruning.selection.objective import as_quota, matvec, row_squares

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = [((10_000, 256), (0.3, 0.5, 0.9), 0), ((100_000, 128), (0.5,), 1)] if args.quick else [
        ((50_000, 512), (0.3, 0.5, 0.9), 0), ((1_000_000, 128), (0.5,), 1)]
    print(f"benchmarks/core_route.py {'--quick' if args.quick else ''} (BLAS threads 1, best of {args.repeats})")
    with threadpool_limits(1):
        for (n, d), ratios, seed in cases:
            S = synthetic_influence(n, d, seed=seed)
            squares = row_squares(S)
            repeats = args.repeats if n <= 100_000 else 1
            for ratio in ratios:
                codes, quota = as_quota(n, int(ratio * n), None)
                core, t_core = best_time(lambda: core_cardinality(S, codes, quota, squares=squares), repeats)
                greedy, t_greedy = best_time(lambda: greedy_cardinality(S, codes, quota, squares=squares), repeats)
                _, _, _, direction = relax_cardinality(S, codes, quota, 50, tolerance=0.005)
                sorted_only = np.argsort(matvec(S, direction), kind="stable")[: quota[0]]
                v_core, v_greedy = removal_norm(S, np.flatnonzero(core)), removal_norm(S, np.flatnonzero(greedy))
                print(
                    f"  n = {n}, d = {d}, ratio {ratio}: core route {v_core:.2f} in {t_core:.2f} s, greedy "
                    f"{v_greedy:.2f} in {t_greedy:.2f} s -> objective ratio {v_core / v_greedy:.4f}, time ratio "
                    f"{t_greedy / t_core:.1f}x; sorted along u alone {removal_norm(S, sorted_only):.2f}"
                )
            del S


if __name__ == "__main__":
    main()
