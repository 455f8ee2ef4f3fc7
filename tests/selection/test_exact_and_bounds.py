"""The exact solver against brute force, and the relaxation bounds against the exact optimum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dataset_pruning.selection import SOLVERS, relaxation_bound, removal_norm


def brute_force_eq4(S, m, labels=None, quota=None):
    best = np.inf
    for subset in itertools.combinations(range(len(S)), m):
        if labels is not None and np.bincount(labels[list(subset)], minlength=len(quota)).tolist() != list(quota):
            continue
        best = min(best, removal_norm(S, np.array(subset, dtype=np.int64)))
    return best


def brute_force_eq3(S, eps):
    for size in range(len(S), -1, -1):
        if any(removal_norm(S, np.array(c, dtype=np.int64)) <= eps for c in itertools.combinations(range(len(S)), size)):
            return size
    return 0


@pytest.mark.parametrize("seed", range(4))
def test_exact_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(9, 3 + seed))
    for m in (1, 3, 4, 6, 9):
        removed = SOLVERS.get("exact")().cardinality(S, m)
        assert len(removed) == m
        assert removal_norm(S, removed) == pytest.approx(brute_force_eq4(S, m), rel=1e-9, abs=1e-12)
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    quota = np.array([1, 2, 1])
    removed = SOLVERS.get("exact")().cardinality(S, quota, labels)
    assert removal_norm(S, removed) == pytest.approx(brute_force_eq4(S, 4, labels, quota), rel=1e-9)
    eps = float(np.median(np.linalg.norm(S, axis=1)))
    assert len(SOLVERS.get("exact")().generalization(S, eps)) == brute_force_eq3(S, eps)


def test_scip_path_matches_enumeration():
    pytest.importorskip("pyscipopt")
    rng = np.random.default_rng(7)
    S = rng.normal(size=(12, 5))
    enumerated = SOLVERS.get("exact")().cardinality(S, 5)
    solver = SOLVERS.get("exact")(max_subsets=0, max_split_n=0)  # forces SCIP
    scip = solver.cardinality(S, 5)
    assert solver.status == "optimal"
    assert removal_norm(S, scip) == pytest.approx(removal_norm(S, enumerated), rel=1e-4)
    eps = 1.5
    assert len(SOLVERS.get("exact")(max_subsets=0, max_split_n=0).generalization(S, eps)) == brute_force_eq3(S, eps)


@pytest.mark.parametrize("seed", range(3))
def test_meet_in_the_middle_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(16, 4))
    for m in (3, 8, 13):
        solver = SOLVERS.get("exact")(max_subsets=0, use_scip=False)
        removed = solver.cardinality(S, m)
        assert solver.status == "optimal (meet in the middle)" and len(removed) == m
        assert removal_norm(S, removed) == pytest.approx(brute_force_eq4(S, m), rel=1e-9)


def test_meet_in_the_middle_keeps_a_deadline_and_says_it_stopped():
    from dataset_pruning.selection.solvers.exact import meet_in_the_middle

    S = np.random.default_rng(0).normal(size=(16, 4))
    incumbent = np.arange(8)
    removed, value, complete = meet_in_the_middle(S, 8, incumbent, deadline=0.0)  # a deadline long past
    assert not complete and len(removed) == 8 and value <= removal_norm(S, incumbent)
    removed, value, complete = meet_in_the_middle(S, 8, incumbent)
    assert complete and value == pytest.approx(brute_force_eq4(S, 8), rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(14, 2), (30, 3)])
def test_default_solver_is_exact_on_small_low_dimensional_instances(seed, shape):
    """Low-d instances defeat local search (number-partitioning-like); the default solves small ones exactly."""
    S = np.random.default_rng(seed).normal(size=shape)
    for m in (4, shape[0] // 2):
        solver = SOLVERS.get("hybrid")(time_budget_s=30)
        removed = solver.cardinality(S, m)
        expected = SOLVERS.get("exact")(use_scip=False).cardinality(S, m)
        assert solver.status == "optimal" and len(removed) == m
        assert removal_norm(S, removed) == pytest.approx(removal_norm(S, expected), rel=1e-9, abs=1e-12)
    if shape[0] == 14:
        assert removal_norm(S, removed) == pytest.approx(brute_force_eq4(S, 7), rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", [(10, 3), (10, 14)])
@pytest.mark.parametrize("max_copy_gb", [2.0, 0.0])  # 0: a float32 S is iterated as is, only certified in float64
def test_bounds_hold_against_the_exact_optimum(seed, shape, max_copy_gb):
    rng = np.random.default_rng(seed)
    S = (rng.normal(size=shape) + (0.5 if seed % 2 else 0.0)).astype(np.float32).astype(np.float64)
    exact = SOLVERS.get("exact")()
    for m in (2, 5, 8):
        optimum = removal_norm(S, exact.cardinality(S, m))
        bound, note = relaxation_bound(
            S.astype(np.float32), "cardinality", m=m, iterations=300, max_copy_gb=max_copy_gb
        )
        assert 0.0 <= bound <= optimum * (1 + 1e-9) + 1e-12
        if bound == 0.0:
            assert note.startswith("trivial")
    for eps in (0.5, 2.0):
        count = len(exact.generalization(S, eps))
        bound, _ = relaxation_bound(
            S.astype(np.float32), "generalization", eps=eps, iterations=100, max_copy_gb=max_copy_gb
        )
        assert bound >= count


def test_eq4_bound_is_informative_when_d_exceeds_n():
    """With n < d the rows are independent, 0 is not reachable, and the bound must certify something."""
    rng = np.random.default_rng(0)
    S = rng.normal(size=(10, 40))
    bound, note = relaxation_bound(S, "cardinality", m=5, iterations=300)
    optimum = removal_norm(S, SOLVERS.get("exact")().cardinality(S, 5))
    assert note == "informative" and 0.5 * optimum < bound <= optimum


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_relaxation_closes_its_duality_gap(seed, dtype):
    """FISTA with backtracking converges: the relaxed objective ||S^T W|| of its feasible W and the dual bound L(u)
    meet (heavy-tailed rows with a common mean, n < d, so the relaxed optimum is positive). In float32 the
    sufficient-decrease test can fail by rounding alone at tiny steps; the step size must not shrink for it."""
    from dataset_pruning.selection.solvers.bounds import relax_cardinality
    from dataset_pruning.selection.budgets import as_quota

    rng = np.random.default_rng(seed)
    S = (rng.normal(size=(30, 50)) + 0.3 * rng.normal(size=50)) * rng.lognormal(0.0, 1.0, size=(30, 1))
    S = S.astype(dtype)
    codes, quota = as_quota(30, 10, None)
    weights, relaxed, bound, direction = relax_cardinality(S, codes, quota, 2000)
    assert weights.min() >= 0.0 and weights.max() <= 1.0 and weights.sum() == pytest.approx(10.0)
    assert relaxed == pytest.approx(float(np.linalg.norm(weights @ S.astype(np.float64))), rel=1e-5)
    assert 0.0 < bound <= relaxed and relaxed - bound <= 1e-4 * relaxed
    assert np.linalg.norm(direction) == pytest.approx(1.0)
