"""Every registered solver on random and adversarial inputs: Eq. 4 returns exactly m indices (m_c per class),
Eq. 3 stays within eps (and the class caps), and the same seed gives the same selection."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_pruning.selection import SOLVERS, class_caps, class_quotas, removal_norm, select_removed, solve_selection

# options that keep each solver deterministic and quick on tiny inputs
FAST = {
    "annealing": {"steps": 3000},
    "relaxation": {"iterations": 60},
    "hybrid": {"iterations": 60, "stall": 20},
    "bucketed": {"use_dask": False, "buckets": 2, "refine_s": 30.0},
}


# hybrid with its core route (core.py), or its pooled route (pool.py), on every size, not only from 20,000 rows on
VARIANTS = {
    "hybrid_core": ("hybrid", {"iterations": 60, "stall": 20, "core_n": 0, "pool_n": None}),
    "hybrid_pool": ("hybrid", {"pool_n": 0, "pool_iterations": 30, "pool": 4}),
}
NAMES = SOLVERS.names() + sorted(VARIANTS)


def make(name: str, seed: int = 0):
    base, options = VARIANTS.get(name, (name, FAST.get(name, {})))
    return SOLVERS.get(base)(seed=seed, **options)


def instances():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(12, 4))
    huge = base.copy()
    huge[3] *= 1e6
    duplicated = np.repeat(rng.normal(size=(4, 4)), 3, axis=0)
    return {
        "random": base,
        "random_float32": rng.normal(size=(12, 6)).astype(np.float32),
        "all_zero": np.zeros((12, 4)),
        "duplicated_rows": duplicated,
        "one_huge_row": huge,
        "wide": rng.normal(size=(10, 30)),
    }


INSTANCES = instances()
LABELS = np.array([0, 1, 2] * 4)


def check_cardinality(removed, n, m):
    removed = np.asarray(removed)
    assert removed.dtype == np.int64 and len(removed) == m
    assert len(np.unique(removed)) == m and (removed >= 0).all() and (removed < n).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", sorted(INSTANCES))
def test_cardinality_returns_exactly_m(name, case):
    S = INSTANCES[case]
    n = len(S)
    for m in (0, 1, n // 2, n - 1, n):
        removed = make(name).cardinality(S, m)
        check_cardinality(removed, n, m)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", sorted(INSTANCES))
def test_generalization_stays_within_eps(name, case):
    S = INSTANCES[case]
    typical = float(np.median(np.linalg.norm(S, axis=1)))
    for eps in (0.0, 0.5 * typical, 2.0 * typical, 1e12):
        removed = np.asarray(make(name).generalization(S, eps))
        assert len(np.unique(removed)) == len(removed)
        assert removal_norm(S, removed) <= eps * (1 + 1e-12) + 1e-300
    if case == "all_zero":  # every subset has norm 0: all of it can go, even at eps = 0
        assert name == "random" or len(make(name).generalization(S, 0.0)) == len(S)


@pytest.mark.parametrize("name", [s for s in NAMES if s != "annealing"])
def test_generalization_removes_everything_when_eps_is_huge(name):
    S = INSTANCES["random"]
    assert len(make(name).generalization(S, 1e12)) == len(S)


@pytest.mark.parametrize("name", NAMES)
def test_class_balanced_quotas_are_met_exactly(name):
    S = INSTANCES["random"]
    for ratio in (0.25, 0.5, 0.75):
        quota = class_quotas(LABELS, ratio)
        removed = make(name).cardinality(S, quota, LABELS)
        check_cardinality(removed, len(S), int(quota.sum()))
        assert np.bincount(LABELS[removed], minlength=3).tolist() == quota.tolist()


@pytest.mark.parametrize("name", NAMES)
def test_class_floor_is_kept_in_eq3(name):
    S = INSTANCES["random"]
    caps = class_caps(LABELS, 0.5)  # keep at least half of each class
    removed = np.asarray(make(name).generalization(S, 1e12, LABELS, caps))
    assert (np.bincount(LABELS[removed], minlength=3) <= caps).all()
    assert removal_norm(S, removed) <= 1e12


def test_class_quotas_round_by_largest_remainder():
    labels = np.array([0] * 7 + [1] * 5 + [2] * 3)
    quota = class_quotas(labels, 0.5)
    assert quota.sum() == round(0.5 * 15)
    assert all(np.floor(0.5 * c) <= q <= np.ceil(0.5 * c) for q, c in zip(quota, [7, 5, 3]))
    assert class_caps(labels, 0.5).tolist() == [3, 2, 1]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_selection(name):
    S = INSTANCES["random"]
    assert np.array_equal(make(name, seed=3).cardinality(S, 5), make(name, seed=3).cardinality(S, 5))
    assert np.array_equal(make(name, seed=3).generalization(S, 2.0), make(name, seed=3).generalization(S, 2.0))


@pytest.mark.parametrize("name", ["hybrid", "swap", "relaxation", "greedy", "annealing"])
def test_heuristics_beat_random_on_eq4(name):
    rng = np.random.default_rng(1)
    S = rng.normal(size=(300, 8)) + 0.3
    m = 150
    random_norm = np.mean([removal_norm(S, make("random", seed=s).cardinality(S, m)) for s in range(5)])
    assert removal_norm(S, make(name).cardinality(S, m)) < 0.5 * random_norm


def test_swap_and_hybrid_are_no_worse_than_greedy():
    rng = np.random.default_rng(2)
    S = rng.standard_t(2, size=(400, 16))
    for m in (50, 200, 350):
        greedy = removal_norm(S, make("greedy").cardinality(S, m))
        swap = removal_norm(S, SOLVERS.get("swap")(stall=0).cardinality(S, m))
        hybrid = removal_norm(S, SOLVERS.get("hybrid")(stall=0, iterations=60).cardinality(S, m))
        assert swap <= greedy and hybrid <= swap  # hybrid keeps the better of greedy + swaps and the relaxation


def test_entry_point_keeps_its_interface_and_validates():
    S = INSTANCES["random"]
    for name in ("greedy", "annealing", "random"):
        removed = select_removed(S, problem="cardinality", solver=name, ratio=0.5, options=FAST.get(name, {}))
        check_cardinality(removed, 12, 6)
    with pytest.raises(ValueError, match="known"):
        select_removed(S, problem="cardinality", solver="nope", ratio=0.5)
    with pytest.raises(ValueError, match="takes no option"):
        select_removed(S, problem="cardinality", solver="greedy", ratio=0.5, options={"steps": 3})
    with pytest.raises(ValueError, match="labels"):
        select_removed(S, problem="cardinality", solver="greedy", ratio=0.5, class_balanced=True)
    with pytest.raises(FloatingPointError):
        select_removed(np.full((4, 2), np.nan), problem="cardinality", solver="greedy", ratio=0.5)


def test_solve_selection_reports_figures_and_projection_error():
    rng = np.random.default_rng(4)
    S = rng.normal(size=(200, 64))
    result = solve_selection(S, problem="cardinality", solver="swap", ratio=0.3, projection_dim=16)
    metrics = result.metrics()
    assert metrics["objective"] == pytest.approx(removal_norm(S, result.removed))
    assert metrics["eps_over_n"] == pytest.approx(metrics["objective"] / 200)
    assert metrics["m_over_n2"] == pytest.approx(60 / 200**2)
    assert 0.0 <= metrics["projection_error"] < 1.0
    assert metrics["bound"] <= metrics["objective"] + 1e-12
    eq3 = solve_selection(S, problem="generalization", solver="swap", eps=1.0, projection_dim=16)
    assert eq3.objective <= 1.0 and eq3.bound >= len(eq3.removed)


@pytest.mark.parametrize("ratio", [0.3, 0.8])
def test_chunked_greedy_meets_class_quotas_and_stays_close_to_greedy(ratio):
    """Beyond chunk_rows rows greedy runs chunk after chunk: every class's quota is still met exactly."""
    from dataset_pruning.selection.solvers.greedy import greedy_cardinality
    from dataset_pruning.selection.budgets import as_quota

    rng = np.random.default_rng(3)
    S = rng.normal(size=(3000, 8)) + 0.2
    labels = rng.integers(0, 5, size=3000)
    codes, quota = as_quota(len(S), class_quotas(labels, ratio), labels)
    whole = greedy_cardinality(S, codes, quota)
    chunked = greedy_cardinality(S, codes, quota, chunk_rows=700)  # 5 chunks
    assert np.array_equal(np.bincount(codes[chunked], minlength=5), quota)
    random_norm = removal_norm(S, make("random").cardinality(S, int(quota.sum())))
    chunked_norm, whole_norm = removal_norm(S, np.flatnonzero(chunked)), removal_norm(S, np.flatnonzero(whole))
    assert chunked_norm < 0.5 * random_norm
    assert chunked_norm - whole_norm < 0.05 * (random_norm - whole_norm)  # keeps >= 95 % of greedy's advantage


@pytest.mark.parametrize("groups", [False, True])
def test_core_route_meets_quotas_and_beats_greedy_when_the_bound_is_informative(groups):
    """The core route (dual direction + greedy on a band) removes exactly m_c per class and, on an instance whose
    relaxation bound is informative (heavy-tailed rows with a common mean), beats greedy clearly (measured: 86 vs
    135, random 3,275, lower bound 57; without the fixed samples' sum as the band's start it gets 126)."""
    from dataset_pruning.selection.solvers.core import core_cardinality
    from dataset_pruning.selection.solvers.greedy import greedy_cardinality
    from dataset_pruning.selection.budgets import as_quota

    rng = np.random.default_rng(4)
    S = (rng.normal(size=(4000, 16)) + 0.3) * rng.lognormal(size=(4000, 1))
    labels = rng.integers(0, 4, size=4000) if groups else None
    m = class_quotas(labels, 0.4) if groups else 1600
    codes, quota = as_quota(len(S), m, labels)
    core = core_cardinality(S, codes, quota, iterations=20, band=0.2)
    assert core is not None
    assert np.array_equal(np.bincount(codes[core], minlength=len(quota)), quota)
    greedy = removal_norm(S, np.flatnonzero(greedy_cardinality(S, codes, quota)))
    assert removal_norm(S, np.flatnonzero(core)) <= 0.8 * greedy


def test_core_route_steps_aside_when_the_bound_certifies_nothing():
    from dataset_pruning.selection.solvers.core import core_cardinality
    from dataset_pruning.selection.budgets import as_quota

    codes, quota = as_quota(50, 20, None)
    assert core_cardinality(np.zeros((50, 4)), codes, quota) is None  # no direction: hybrid falls back to greedy
    with pytest.raises(ValueError, match="band"):
        core_cardinality(np.ones((50, 4)), codes, quota, band=0.0)


@pytest.mark.parametrize("groups", [False, True])
def test_tabu_search_leaves_certified_swap_optima_and_keeps_class_counts(groups):
    """From a certified 2-swap local optimum (swap_refine, patience None) tabu search finds clearly better sets on
    low-dimensional instances, where swap moves alone get stuck (measured: 0.24-0.55 of the local optimum's norm;
    with no tabu tenure, (0, 0), 0.72-1.0, so the test fails), and every class keeps its count."""
    from dataset_pruning.selection.solvers.greedy import greedy_cardinality
    from dataset_pruning.selection.budgets import as_quota
    from dataset_pruning.selection.solvers.moves import swap_refine, tabu_search

    for seed in range(3):
        rng = np.random.default_rng(seed)
        S = rng.normal(size=(40, 8))
        labels = np.arange(40) % 2 if groups else None
        codes, quota = as_quota(40, class_quotas(labels, 0.4) if groups else 16, labels)
        local = swap_refine(S, greedy_cardinality(S, codes, quota), codes, patience=None)
        found = tabu_search(S, local, codes, deadline=float("inf"), rng=np.random.default_rng(0), stall=2000)
        assert np.array_equal(np.bincount(codes[found], minlength=len(quota)), quota)
        assert removal_norm(S, np.flatnonzero(found)) <= 0.8 * removal_norm(S, np.flatnonzero(local))


def test_tabu_candidates_per_class_are_the_k_smallest_gains_in_class_gain_index_order():
    """tabu search's candidates (moves._best_per_class, one partition of a padded class table) equal sorting the
    members by (class, gain, index) and keeping the first k of each class, with ties at the k-th gain, classes
    smaller than k, classes without members and k above every class size; their order decides argmin ties."""
    from dataset_pruning.selection.solvers.moves import _best_per_class, _class_table

    rng = np.random.default_rng(0)
    for trial in range(200):
        n, groups, k = int(rng.integers(2, 60)), int(rng.integers(1, 6)), int(rng.integers(1, 12))
        codes = rng.integers(0, groups, n)
        side = rng.random(n) < rng.uniform(0.2, 0.9)
        gain = rng.integers(-3, 4, n).astype(float) if trial % 2 else rng.normal(size=n)  # integers: many ties
        members = np.flatnonzero(side)
        got = _best_per_class(members, side, gain, codes, k, _class_table(codes, int(codes.max()) + 1))
        if members.size <= k or len(np.unique(codes[members])) == 1:
            continue  # those paths return the members, or argpartition's choice, as before
        ordered = members[np.lexsort((gain[members], codes[members]))]
        expected = np.concatenate([ordered[codes[ordered] == c][:k] for c in np.unique(codes[ordered])])
        np.testing.assert_array_equal(got, expected)


def test_tabu_gram_rows_match_and_survive_a_full_cache():
    """The on-demand Gram rows equal S S^T, also after the cache fills and starts over."""
    from dataset_pruning.selection.solvers.moves import _GramRows

    S = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    gram = _GramRows(S, cache_mb=300 * 4 * 10 / 2**20)  # room for 10 rows
    assert gram.capacity == 10
    for index in (np.array([3, 7, 3]), np.arange(20, 28), np.array([299, 0])):
        np.testing.assert_allclose(gram.rows(index), S[index] @ S.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "options", [{"tabu_candidates": 0}, {"tabu_tenure": [15, 5]}, {"tabu_tenure": [-1, 3]}, {"tabu_tenure": [5]}]
)
def test_hybrid_rejects_bad_tabu_options(options):
    with pytest.raises(ValueError, match="tabu"):
        SOLVERS.get("hybrid")(**options)
