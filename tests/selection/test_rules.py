"""Every registered rule (looped over RULES): exactly the requested count, class and group budgets, the same
answer for a seed, and the end of the score each rule documents; then each rule's own behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_pruning.selection import (
    RULES,
    cell_quotas,
    check_rule_options,
    class_quotas,
    remove_by_score,
    rule_needs,
    rule_options,
    select_by_rule,
    select_for_method,
)
from dataset_pruning.selection.groups import equal_width_strata
from dataset_pruning.selection.budgets import allocate_from_sparsest

RATIOS = (0.1, 0.3, 0.5, 0.7, 0.9)


def data(n: int = 300, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    labels[:classes] = np.arange(classes)  # every class present
    scores = rng.gamma(2.0, 1.0, n) + labels  # heavy-ish tail, class-dependent scale
    return scores, labels


def columns(rule: str, n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """The per-sample columns ``rule`` reads (``rule_needs``), as a scorer would give them: values in (0, 1)."""
    rng = np.random.default_rng(seed + 100)
    return {name: rng.uniform(0.01, 0.99, n) for name in rule_needs(rule)}


@pytest.mark.parametrize("rule", RULES.names())
@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("keep", ["highest", "lowest"])
def test_exact_count_and_class_budget(rule, ratio, keep):
    scores, labels = data()
    n = len(scores)
    removed = select_by_rule(scores, keep, ratio, rule=rule, seed=3, columns=columns(rule))
    assert removed.dtype == np.int64 and len(removed) == round(ratio * n)
    assert len(np.unique(removed)) == len(removed) and np.all(np.diff(removed) > 0)
    balanced = select_by_rule(scores, keep, ratio, rule=rule, labels=labels, class_balanced=True, seed=3,
                              columns=columns(rule))
    assert np.bincount(labels[balanced], minlength=4).tolist() == class_quotas(labels, ratio).tolist()


@pytest.mark.parametrize("rule", RULES.names())
@pytest.mark.parametrize("budget", ["proportional", "coverage"])
def test_group_budgets_are_honoured_within_classes(rule, budget):
    scores, labels = data(seed=1)
    groups = equal_width_strata(scores, 5)
    removed = select_by_rule(
        scores, "highest", 0.6, rule=rule, labels=labels, class_balanced=True, groups=groups, group_budget=budget,
        columns=columns(rule),
    )
    codes, quota = cell_quotas(len(scores), 0.6, labels=labels, groups=groups, budget=budget)
    assert np.bincount(codes[removed], minlength=len(quota)).tolist() == quota.tolist()
    assert np.bincount(labels[removed], minlength=4).tolist() == class_quotas(labels, 0.6).tolist()


@pytest.mark.parametrize("rule", RULES.names())
def test_deterministic_for_a_seed(rule):
    scores, labels = data(seed=2)
    first = select_by_rule(scores, "highest", 0.7, rule=rule, labels=labels, class_balanced=True, seed=11,
                           columns=columns(rule))
    second = select_by_rule(scores, "highest", 0.7, rule=rule, labels=labels, class_balanced=True, seed=11,
                            columns=columns(rule))
    assert np.array_equal(first, second)


def test_ccs_draws_depend_on_the_seed():
    scores, _ = data(seed=2)
    first = select_by_rule(scores, "highest", 0.7, rule="ccs", seed=0)
    assert not np.array_equal(first, select_by_rule(scores, "highest", 0.7, rule="ccs", seed=1))


# ---------------------------------------------------------------------------------------------- kept ends
def test_score_rule_keeps_the_scorers_end_as_before():
    scores, labels = data()
    for keep in ("highest", "lowest"):
        removed = select_by_rule(scores, keep, 0.3)
        kept = np.setdiff1d(np.arange(len(scores)), removed)
        if keep == "highest":
            assert scores[kept].min() >= scores[removed].max()
        else:
            assert scores[kept].max() <= scores[removed].min()
        assert np.array_equal(removed, remove_by_score(scores, keep, 0.3))


@pytest.mark.parametrize("hard", ["highest", "lowest"])
def test_ccs_cuts_the_hard_end_and_covers_every_stratum(hard):
    scores, _ = data(n=1000, seed=4)
    ratio, beta, strata = 0.8, 0.1, 10
    removed = select_by_rule(scores, "highest", ratio, rule="ccs", hard=hard, options={"beta": beta, "strata": strata})
    kept = np.setdiff1d(np.arange(len(scores)), removed)
    difficulty = scores if hard == "highest" else -scores
    hardest = np.argsort(-difficulty, kind="stable")[: int(beta * len(scores))]
    assert not np.intersect1d(kept, hardest).size  # the hardest beta fraction is cut
    rest = np.setdiff1d(np.arange(len(scores)), hardest)
    stratum = equal_width_strata(scores[rest], strata)
    sizes = np.bincount(stratum, minlength=strata)
    kept_per_stratum = np.bincount(stratum[np.searchsorted(rest, kept)], minlength=strata)
    # sparsest first: a stratum smaller than the fair share is kept whole, the others share the rest evenly
    assert kept_per_stratum.tolist() == allocate_from_sparsest(sizes, len(kept)).tolist()
    assert (kept_per_stratum[sizes > 0] > 0).all()


def test_ccs_shrinks_the_cut_when_the_budget_needs_it():
    scores = np.arange(100, dtype=float)
    removed = select_by_rule(scores, "highest", 0.1, rule="ccs", options={"beta": 0.3})  # keeps 90 > 70 left
    assert removed.tolist() == list(range(90, 100))  # only the 10 hardest go


def test_allocation_from_the_sparsest_stratum_matches_the_reference():
    # CCS's bin_allocate: sorted sizes [1, 3, 10, 50], budget 20 -> 1, 3, 16 // 2 = 8, 8
    assert allocate_from_sparsest(np.array([1, 10, 3, 50]), 20).tolist() == [1, 8, 3, 8]
    # integer floors leave a remainder -> placed where room is left, the count is exact
    assert allocate_from_sparsest(np.array([5, 5, 5]), 14).sum() == 14
    assert allocate_from_sparsest(np.array([0, 2, 0]), 5).tolist() == [0, 2, 0]


def test_ratio_aware_keeps_hard_when_plenty_is_kept_and_easy_when_little():
    scores = np.arange(100, dtype=float)  # hard = high
    options = {"threshold": 0.5}
    keep_most = select_by_rule(scores, "highest", 0.3, rule="ratio_aware", options=options)
    assert keep_most.tolist() == list(range(30))  # the 70 hardest kept
    keep_few = select_by_rule(scores, "highest", 0.7, rule="ratio_aware", options=options)
    assert keep_few.tolist() == list(range(30, 100))  # the 30 easiest kept
    aum_like = select_by_rule(-scores, "highest", 0.7, rule="ratio_aware", hard="lowest", options=options)
    assert aum_like.tolist() == keep_few.tolist()  # the same samples whatever the score's direction


def test_moderate_keeps_the_scores_nearest_the_median():
    scores = np.arange(101, dtype=float)
    removed = select_by_rule(scores, "highest", 0.8, rule="moderate")
    kept = np.setdiff1d(np.arange(101), removed)
    assert kept.tolist() == list(range(40, 60))  # 50, then 49 / 51, ..., ties to the lower index (40 before 60)
    hardest = select_by_rule(scores, "highest", 0.8, rule="moderate", options={"quantile": 1.0})
    assert np.array_equal(hardest, remove_by_score(scores, "highest", 0.8))


def test_beta_sampling_moves_from_hard_to_easy_samples_as_the_ratio_grows():
    # DUAL's Beta weight: with mean prediction mu, b = 15 (1 - anchor) (1 - ratio^4) shrinks with the ratio, so the
    # kept set's mu rises toward 1 (easy samples); the score (>= 0) multiplies the weight.
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.05, 0.99, 4000)
    scores = 10 * mu * (1 - mu)  # the highest scores sit at mu = 0.5: the anchor is about 0.5
    means = []
    for ratio in (0.1, 0.5, 0.9):
        removed = select_by_rule(scores, "highest", ratio, rule="beta", seed=0, columns={"mean_probability": mu})
        kept = np.setdiff1d(np.arange(len(mu)), removed)
        means.append(mu[kept].mean())
    assert means[0] < means[1] < means[2] and means[2] > 0.75
    zero = np.where(np.arange(4000) < 3900, 0.0, scores)  # fewer positive weights than the kept count: filled
    assert len(select_by_rule(zero, "highest", 0.5, rule="beta", columns={"mean_probability": mu})) == 2000


def test_beta_density_is_scipys():
    from scipy.stats import beta

    from dataset_pruning.selection.rules.beta import beta_pdf

    x = np.clip(np.random.default_rng(0).random(1000), 1e-6, 1 - 1e-6)
    for a, b in [(15.9, 0.1), (10.0, 6.0), (1.0, 15.0), (16.0 - 1e-3, 1e-3)]:
        np.testing.assert_allclose(beta_pdf(x, a, b), beta.pdf(x, a, b), rtol=1e-12)


def test_beta_sampling_refuses_missing_columns_and_negative_scores():
    scores, _ = data()
    with pytest.raises(ValueError, match="mean_probability.*scorer 'dual'"):
        select_by_rule(scores, "highest", 0.5, rule="beta")
    with pytest.raises(ValueError, match=">= 0"):
        select_by_rule(scores - 10, "highest", 0.5, rule="beta", columns=columns("beta"))


# ---------------------------------------------------------------------------------------------- options
def test_options_are_checked_against_the_signature():
    assert rule_options("ccs") == {"beta": 0.1, "strata": 50}
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['bta'\]; it takes: beta, strata \(did you mean 'beta'\?\)"):
        check_rule_options("ccs", {"bta": 0.2})
    with pytest.raises(ValueError, match="beta must be a number in"):
        check_rule_options("ccs", {"beta": 1.5})
    with pytest.raises(ValueError, match="strata must be an integer"):
        check_rule_options("ccs", {"strata": 0})
    with pytest.raises(ValueError, match="threshold"):
        check_rule_options("ratio_aware", {"threshold": -1})
    with pytest.raises(ValueError, match="known: beta, ccs"):
        select_by_rule(np.ones(5), "highest", 0.4, rule="ccss")


# ---------------------------------------------------------------------------------------------- entry point
def test_select_for_method_applies_rules_to_scalars_and_to_vectors():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(200, 5)) * rng.gamma(1.0, 1.0, (200, 1))
    labels = rng.integers(0, 3, 200)
    scores = rng.normal(size=200)
    default, _ = select_for_method(S, scores, "highest", labels=labels, ratio=0.4)
    assert np.array_equal(default, remove_by_score(scores, "highest", 0.4))
    removed, metrics = select_for_method(
        S, None, None, labels=labels, ratio=0.4, rule="ccs", rule_options={"beta": 0.0, "strata": 5}, seed=2
    )
    norms = np.linalg.norm(S, axis=1)
    assert np.array_equal(removed, select_by_rule(norms, "highest", 0.4, rule="ccs", seed=2,
                                                  options={"beta": 0.0, "strata": 5}))
    assert metrics["removed"] == 80 and metrics["objective"] == pytest.approx(metrics["eps"])
    directed, metrics = select_for_method(S, None, None, labels=labels, ratio=0.4, rule="score", solver="greedy")
    assert len(directed) == 80
    along, metrics = select_for_method(S[:, :2] + 1.0, None, None, labels=labels, ratio=0.4, rule="ratio_aware",
                                       vector_score="direction", rule_options={"threshold": 0.0})
    assert len(along) == 80 and metrics["vector_score_fallback"] in (0.0, 1.0)
    with pytest.raises(ValueError, match="problem 'cardinality'"):
        select_for_method(S, None, None, labels=labels, problem="generalization", eps=1.0, rule="ccs")
    with pytest.raises(ValueError, match="rule_options"):
        select_for_method(S, None, None, labels=labels, ratio=0.4, rule_options={"beta": 0.1})
