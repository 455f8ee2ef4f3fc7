"""Honest tuning: the validation split is carved from the training data (stratified, seeded, disjoint), the
evaluation sees only that split, and the best mean validation accuracy wins."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_pruning.selection.tuning import candidate_grid, rule_evaluator, tune_rule, validation_split


def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat([0, 1, 2], [50, 30, 3])
    fit, validation = validation_split(labels, 0.2, seed=4)
    assert np.intersect1d(fit, validation).size == 0
    assert np.array_equal(np.sort(np.concatenate([fit, validation])), np.arange(len(labels)))
    assert np.bincount(labels[validation]).tolist() == [10, 6, 1]  # round(0.2 n_c), at least one
    again = validation_split(labels, 0.2, seed=4)
    assert np.array_equal(validation, again[1])
    assert not np.array_equal(validation, validation_split(labels, 0.2, seed=5)[1])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        validation_split(labels, 1.0)


def test_tune_rule_picks_the_best_mean_and_sees_only_the_training_split():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 2)), np.arange(100) % 4
    seen = []

    def evaluate(candidate, data):
        seen.append(np.concatenate([data.fit_indices, data.validation_indices]))
        assert np.array_equal(data.y_fit, y[data.fit_indices]) and np.array_equal(data.x_val, x[data.validation_indices])
        return {0.0: 0.5, 0.1: 0.7, 0.3: 0.7}[candidate["rule_options"]["beta"]]  # tie: the earlier one wins

    candidates = candidate_grid("ccs", beta=[0.0, 0.1, 0.3], strata=[50])
    result = tune_rule(x, y, candidates, evaluate, validation_fraction=0.25, seed=1, repeats=2)
    assert result.best == {"rule": "ccs", "rule_options": {"beta": 0.1, "strata": 50}}
    assert [row["mean"] for row in result.table] == [0.5, 0.7, 0.7]
    assert len(result.splits) == 2 and all(len(s) == 100 for s in seen)


def test_rule_evaluator_scores_once_per_split_and_trains_on_the_kept_rows():
    rng = np.random.default_rng(1)
    y = np.arange(120) % 3
    x = rng.normal(size=(120, 2)) + 3.0 * y[:, None]
    x[:12] = rng.normal(size=(12, 2)) * 20  # 12 outliers: the "hardest" by distance to the class mean
    calls = []

    def score(name, data):
        calls.append((name, data.repeat))
        centres = np.stack([data.x_fit[data.y_fit == c].mean(0) for c in range(3)])
        return {"values": np.linalg.norm(data.x_fit - centres[data.y_fit], axis=1), "keep": "highest"}

    def train(x_kept, y_kept, data):  # nearest centroid, validation accuracy
        centres = np.stack([x_kept[y_kept == c].mean(0) for c in range(3)])
        predicted = np.argmin(np.linalg.norm(data.x_val[:, None] - centres[None], axis=2), axis=1)
        return float((predicted == data.y_val).mean())

    evaluate = rule_evaluator(score, train, ratio=0.5, class_balanced=True)
    candidates = [{"rule": "score", "score": "distance"}, *candidate_grid("moderate", "distance", quantile=[0.0, 0.5])]
    result = tune_rule(x, y, candidates, evaluate, seed=0, repeats=2)
    assert calls == [("distance", 0), ("distance", 1)]  # one scoring per (score, split)
    assert result.best["rule"] == "moderate"  # keeping the outliers (the score rule here) loses on validation
    assert result.table[0]["mean"] < max(row["mean"] for row in result.table)
