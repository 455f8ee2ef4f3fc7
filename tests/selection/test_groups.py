"""Eq. 4 / Eq. 3 under coverage: every registered solver honours per-group budgets for any grouping (classes,
score strata, k-means clusters, nested in classes), and the groups themselves are what groups.py says."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_pruning.selection import SOLVERS, cell_quotas, class_quotas, make_groups, removal_norm, solve_selection
from dataset_pruning.selection.groups import equal_width_strata, kmeans_clusters
from dataset_pruning.selection.budgets import apportion, cell_codes

FAST = {
    "annealing": {"steps": 3000},
    "relaxation": {"iterations": 60},
    "hybrid": {"iterations": 60, "stall": 20},
    "bucketed": {"use_dask": False, "buckets": 2, "refine_s": 30.0},
    "exact": {"max_subsets": 20000, "node_limit": 200},
}


def instance(n: int = 60, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(n, d)) * rng.gamma(1.0, 1.0, (n, 1))
    labels = np.arange(n) % 3
    return S, labels


@pytest.mark.parametrize("solver", SOLVERS.names())
@pytest.mark.parametrize("groups", ["strata", "clusters", "class"])
@pytest.mark.parametrize("budget", ["proportional", "coverage"])
def test_eq4_removes_each_groups_quota(solver, groups, budget):
    S, labels = instance(n=30 if solver == "exact" else 60)
    class_balanced = groups != "class"
    result = solve_selection(
        S, problem="cardinality", solver=solver, ratio=0.4, labels=labels, class_balanced=class_balanced,
        groups=groups, n_groups=3, group_budget=budget, bound_iterations=0, options={"seed": 1, **FAST.get(solver, {})},
    )
    inner = make_groups(groups, 3, n=len(S), labels=labels, vectors=S, seed=1)
    codes, quota = cell_quotas(len(S), 0.4, labels=labels if class_balanced else None, groups=inner, budget=budget)
    assert np.bincount(codes[result.removed], minlength=len(quota)).tolist() == quota.tolist()
    assert len(result.removed) == round(0.4 * len(S))
    if class_balanced:
        assert np.bincount(labels[result.removed], minlength=3).tolist() == class_quotas(labels, 0.4).tolist()


@pytest.mark.parametrize("solver", [s for s in SOLVERS.names() if s != "exact"])
def test_eq3_keeps_the_floor_of_every_group(solver):
    S, labels = instance(seed=3)
    result = solve_selection(
        S, problem="generalization", solver=solver, eps=2.0, labels=labels, class_balanced=True, class_floor=0.5,
        groups="strata", n_groups=3, bound_iterations=0, options={"seed": 1, **FAST.get(solver, {})},
    )
    assert removal_norm(S, result.removed) <= 2.0 + 1e-9
    codes = cell_codes(len(S), labels, equal_width_strata(np.linalg.norm(S, axis=1), 3))[0]
    sizes = np.bincount(codes)
    removed = np.bincount(codes[result.removed], minlength=len(sizes))
    assert (removed <= sizes - np.ceil(0.5 * sizes)).all()


def test_same_seed_same_groups_and_selection():
    S, labels = instance(seed=5)
    runs = [
        solve_selection(S, problem="cardinality", solver="hybrid", ratio=0.5, groups="clusters", n_groups=4,
                        bound_iterations=0, options={"seed": 2, **FAST["hybrid"]}).removed
        for _ in range(2)
    ]
    assert np.array_equal(*runs)


def test_strata_are_equal_width_and_clusters_are_seeded():
    assert equal_width_strata(np.array([0.0, 0.1, 0.5, 0.99, 1.0]), 2).tolist() == [0, 0, 1, 1, 1]
    assert equal_width_strata(np.array([-3.0, -2.0, -1.0]), 2).tolist() == [0, 1, 1]  # negative maxima too
    assert equal_width_strata(np.ones(4), 5).tolist() == [0, 0, 0, 0]
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 10])
    codes = kmeans_clusters(points, 2, seed=0)
    assert len(set(codes[:20])) == 1 and len(set(codes[20:])) == 1 and codes[0] != codes[-1]
    assert np.array_equal(codes, kmeans_clusters(points, 2, seed=0))
    with pytest.raises(ValueError, match="unknown grouping"):
        make_groups("stratum", 3, n=5)


def test_budgets_add_up():
    sizes = np.array([7, 1, 0, 12])
    assert apportion(9, sizes).sum() == 9 and (apportion(9, sizes) <= sizes).all()
    assert apportion(30, sizes).tolist() == sizes.tolist()  # more than fits: every group full
    labels = np.repeat([0, 1], [30, 10])
    groups = np.concatenate([np.repeat([0, 1, 2], [25, 4, 1]), np.repeat([0, 1], [5, 5])])
    codes, quota = cell_quotas(40, 0.5, labels=labels, groups=groups, budget="coverage")
    kept = np.bincount(codes) - quota
    # class 0 keeps 15 of 30 from the sparsest cell up: the 1- and 4-sample strata stay whole, 10 from the big one
    assert kept.tolist()[:3] == [10, 4, 1] and quota.sum() == 20
