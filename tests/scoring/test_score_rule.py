"""selection.score_rule: a scalar score becomes removed indices by removing the end that is not kept."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_pruning.selection.rules.score_rule import remove_by_score


def test_removes_the_end_not_kept():
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2])
    assert remove_by_score(scores, "highest", 0.5).tolist() == [1, 3, 5]  # the three lowest go
    assert remove_by_score(scores, "lowest", 0.5).tolist() == [0, 2, 4]  # the three highest go
    assert remove_by_score(scores, "highest", 1 / 3).dtype == np.int64


def test_ties_break_by_index_and_count_is_round_ratio_n():
    scores = np.zeros(10)
    assert remove_by_score(scores, "highest", 0.3).tolist() == [0, 1, 2]
    assert len(remove_by_score(scores, "highest", 0.25)) == 2  # round(2.5) = 2, as selection.removal_count


def test_class_balanced_budget():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    scores = np.array([1, 2, 3, 4, 10, 20, 30, 40, 50, 60], dtype=float)
    removed = remove_by_score(scores, "highest", 0.5, labels=labels, class_balanced=True)
    assert removed.tolist() == [0, 1, 4, 5, 6]  # two of four from class 0, three of six from class 1
    assert remove_by_score(scores, "highest", 0.5).tolist() == [0, 1, 2, 3, 4]  # unbalanced empties class 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="solvers"):
        remove_by_score(np.zeros((4, 2)), "highest", 0.5)
    with pytest.raises(FloatingPointError):
        remove_by_score(np.array([1.0, np.nan]), "highest", 0.5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        remove_by_score(np.ones(4), "highest", 1.0)
    with pytest.raises(ValueError, match="labels"):
        remove_by_score(np.ones(4), "highest", 0.5, class_balanced=True)
