"""The pooled route of hybrid (from ``pool_n`` rows on): whitening, whitened FISTA, rounding in norm order,
pooled swap descent."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dataset_pruning.selection import SOLVERS, removal_norm
from dataset_pruning.selection.budgets import as_quota
from dataset_pruning.selection.products import row_squares
from dataset_pruning.selection.solvers.bounds import relax_cardinality, whitening
from dataset_pruning.selection.solvers.pool import pool_descent
from dataset_pruning.selection.solvers.relaxation import round_in_order


def heavy_tailed(n=300, d=12, seed=0):
    rng = np.random.default_rng(seed)
    scales = rng.lognormal(0.0, 2.0, size=(n, 1))
    return (rng.normal(size=(n, d)) * np.linspace(1.0, 0.01, d) * scales + 0.05).astype(np.float32)


def test_whitening_factors_the_regularised_second_moment():
    S = heavy_tailed()
    L = whitening(S, relative=1e-3, chunk_rows=64)  # several row blocks
    second = S.astype(np.float64).T @ S.astype(np.float64) / len(S)
    expected = second + 1e-3 * np.trace(second) / S.shape[1] * np.eye(S.shape[1])
    assert np.allclose(L @ L.T, expected, rtol=1e-5, atol=1e-9 * np.abs(expected).max())
    assert np.allclose(np.triu(L, 1), 0.0)


@pytest.mark.parametrize("groups", [None, np.arange(300) % 3])
def test_whitened_relaxation_stays_in_the_polytope_and_lowers_the_whitened_residual(groups):
    S = heavy_tailed()
    codes, quota = as_quota(len(S), 120 if groups is None else [40, 40, 40], groups)
    L = whitening(S)
    start = np.bincount(codes)[codes] ** -1.0 * quota[codes]  # FISTA's first point
    weights, value, bound, direction = relax_cardinality(S, codes, quota, 50, metric=L)
    assert np.all((weights >= 0) & (weights <= 1))
    assert np.allclose(np.bincount(codes, weights), quota)
    whitened = lambda w: np.linalg.norm(np.linalg.solve(L, S.astype(np.float64).T @ w))  # noqa: E731
    assert value == pytest.approx(whitened(weights), rel=1e-4)
    assert value < 0.5 * whitened(start)
    assert bound == 0.0 and not direction.any()  # no certificate in the whitened metric


@pytest.mark.parametrize("groups", [None, np.arange(300) % 3])
def test_round_in_order_meets_every_quota_and_keeps_integral_weights(groups):
    S = heavy_tailed()
    codes, quota = as_quota(len(S), 120 if groups is None else [40, 40, 40], groups)
    rng = np.random.default_rng(1)
    integral = np.zeros(len(S))
    for g, q in enumerate(quota):
        integral[rng.choice(np.flatnonzero(codes == g), q, replace=False)] = 1.0
    assert np.array_equal(round_in_order(S, integral, codes, quota, row_squares(S)), integral == 1.0)
    weights = rng.uniform(size=len(S))
    mask = round_in_order(S, weights, codes, quota, row_squares(S), chunk_rows=7)
    assert np.array_equal(np.bincount(codes[mask], minlength=len(quota)), quota)


def test_round_in_order_keeps_the_relaxed_residual_better_than_rounding_by_weight():
    S = heavy_tailed(n=2000, d=8)
    codes, quota = as_quota(len(S), 1000, None)
    weights = relax_cardinality(S, codes, quota, 200, metric=whitening(S))[0]
    ordered = round_in_order(S, weights, codes, quota, row_squares(S))
    by_weight = np.zeros(len(S), dtype=bool)
    by_weight[np.argsort(-weights, kind="stable")[:1000]] = True
    assert removal_norm(S, np.flatnonzero(ordered)) < 0.5 * removal_norm(S, np.flatnonzero(by_weight))


@pytest.mark.parametrize("groups", [None, np.arange(24) % 2])
def test_pool_descent_with_a_pool_covering_all_samples_ends_at_a_certified_swap_optimum(groups):
    S = heavy_tailed(n=24, d=3, seed=2).astype(np.float64)
    codes = np.zeros(24, dtype=np.int64) if groups is None else groups
    start = np.zeros(24, dtype=bool)
    start[::2] = True  # 12 removed, 6 per class
    mask = pool_descent(S, start, codes, pool=24)
    assert np.array_equal(np.bincount(codes[mask]), np.bincount(codes[start]))
    value = removal_norm(S, np.flatnonzero(mask))
    assert value <= removal_norm(S, np.flatnonzero(start))
    for i, j in itertools.product(np.flatnonzero(mask), np.flatnonzero(~mask)):
        if codes[i] == codes[j]:
            trial = mask.copy()
            trial[i], trial[j] = False, True
            assert removal_norm(S, np.flatnonzero(trial)) >= value * (1 - 1e-9)


def test_pool_descent_stops_after_max_rounds_and_never_raises_the_objective():
    S = heavy_tailed(n=400, d=6, seed=3)
    codes = np.zeros(400, dtype=np.int64)
    start = np.zeros(400, dtype=bool)
    start[:200] = True
    values = [removal_norm(S, np.flatnonzero(start))]
    for rounds in (1, 2, 8):
        values.append(removal_norm(S, np.flatnonzero(pool_descent(S, start, codes, pool=8, max_rounds=rounds))))
    assert values == sorted(values, reverse=True) and values[-1] < values[0]


def test_hybrid_takes_the_pooled_route_from_pool_n_rows_on():
    S = heavy_tailed(n=500, d=10, seed=4)
    codes, quota = as_quota(500, 250, None)
    squares = row_squares(S)
    weights = relax_cardinality(S, codes, quota, 40, metric=whitening(S, 1e-3))[0]
    rounded = round_in_order(S, weights, codes, quota, squares)
    smallest = np.isin(np.arange(500), np.argsort(squares, kind="stable")[:250])
    start = min((rounded, smallest), key=lambda mask: removal_norm(S, mask))
    by_hand = pool_descent(S, start, codes, pool=16, squares=squares)
    options = {"pool_iterations": 40, "whiten": 1e-3, "pool": 16, "pool_start": "whitened"}
    pooled = SOLVERS.get("hybrid")(pool_n=500, **options).cardinality(S, 250)
    assert np.array_equal(pooled, np.flatnonzero(by_hand))
    other = SOLVERS.get("hybrid")(pool_n=501, stall=20, **options).cardinality(S, 250)
    assert len(other) == 250 and not np.array_equal(other, pooled)


@pytest.mark.parametrize(
    "groups, m, pool_start, greedy_start",
    [(None, 250, "auto", False), (np.arange(500) % 2, [100, 150], "auto", False), (None, 251, "auto", True),
     (np.arange(500) % 2, [150, 200], "auto", True), (None, 250, "greedy", True), (None, 100, "greedy", True)],
)
def test_pooled_route_descends_from_the_smallest_rows_or_hybrids_start(groups, m, pool_start, greedy_start):
    """From ``core_n`` rows on, Eq. 4's start is the core route's, and greedy where the relaxation certifies nothing
    (as on this S); ``auto`` (the default) skips that greedy while at most half is removed and descends from each
    class's smallest rows, ``greedy`` takes the lower of the two at every ratio."""
    S = heavy_tailed(n=500, d=10, seed=4)
    codes, quota = as_quota(500, m, groups)
    squares = row_squares(S)
    solver = SOLVERS.get("hybrid")(pool_n=500, core_n=500, pool=16, pool_start=pool_start)
    smallest = np.zeros(500, dtype=bool)
    for g, q in enumerate(quota):
        smallest[np.flatnonzero(codes == g)[np.argsort(squares[codes == g], kind="stable")[:q]]] = True
    assert solver._start(S, codes, quota, squares, None, fallback=False) is None  # the core route steps aside
    greedy = solver._start(S, codes, quota, squares, None)
    start = min((greedy, smallest), key=lambda mask: removal_norm(S, mask)) if greedy_start else smallest
    by_hand = pool_descent(S, start, codes, pool=16, squares=squares)
    assert np.array_equal(solver.cardinality(S, m, groups), np.flatnonzero(by_hand))
    # every case is one where the start decides: greedy's is the lower, and descending from it ends elsewhere
    assert removal_norm(S, greedy) < removal_norm(S, smallest)
    assert not np.array_equal(by_hand, pool_descent(S, smallest if greedy_start else greedy, codes, pool=16,
                                                    squares=squares))


def test_auto_keeps_the_core_routes_start_where_it_gives_one():
    """Where the relaxation orders the samples (here a common offset keeps every S_i on one side), ``auto`` takes
    the lower of the core route's start and the smallest rows, as ``greedy`` does."""
    S = heavy_tailed(n=500, d=10, seed=4) + 0.5
    codes, quota = as_quota(500, 200, None)
    squares = row_squares(S)
    options = {"pool_n": 500, "core_n": 500, "pool": 16}
    core = SOLVERS.get("hybrid")(**options)._start(S, codes, quota, squares, None, fallback=False)
    smallest = np.isin(np.arange(500), np.argsort(squares, kind="stable")[:200])
    assert core is not None and removal_norm(S, core) < removal_norm(S, smallest)
    auto = SOLVERS.get("hybrid")(**options).cardinality(S, 200)
    assert np.array_equal(auto, SOLVERS.get("hybrid")(pool_start="greedy", **options).cardinality(S, 200))
    assert not np.array_equal(auto, np.flatnonzero(pool_descent(S, smallest, codes, pool=16, squares=squares)))


@pytest.mark.parametrize(
    "options",
    [{"pool": 0}, {"pool_iterations": -1}, {"pool_n": 1.5}, {"whiten": 0.0}, {"whiten": "x"}, {"pool_start": "x"}],
)
def test_hybrid_rejects_bad_pool_options(options):
    with pytest.raises(ValueError, match="hybrid's"):
        SOLVERS.get("hybrid")(**options)


@pytest.mark.parametrize("groups", [None, np.arange(600) % 3])
def test_pooled_route_starts_from_each_class_smallest_rows_when_they_nearly_cancel(groups):
    rng = np.random.default_rng(5)
    S = rng.normal(size=(600, 6)) * np.where(np.arange(600) < 300, 1e-6, 1.0)[:, None]  # 300 tiny rows
    m = 150 if groups is None else [50, 50, 50]
    removed = SOLVERS.get("hybrid")(pool_n=0, pool_iterations=5).cardinality(S, m, groups)
    assert removal_norm(S, removed) < 1e-4  # 150 tiny rows: ~1e-5; any large row: ~1
    codes = np.zeros(600, dtype=np.int64) if groups is None else groups
    assert np.array_equal(np.bincount(codes[removed]), np.atleast_1d(np.bincount(codes)) * 0 + np.atleast_1d(m))
