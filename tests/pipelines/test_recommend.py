"""The recommend and tolerance pipelines (issue 26): which method on this data set, and the smallest subset within
delta of the full data, measured on a validation split, exported from a run on the whole training set."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dataset_pruning.experiments.recommend import bisect_ratio, leave_one_out, minimax_choice, ratio_grid, winners

from kedro_runs import latest, load_latest, run  # noqa: E402


@pytest.mark.parametrize("threshold", [0.0, 0.12, 0.5, 0.93, 1.0])
def test_bisection_finds_the_largest_passing_ratio_in_few_probes(threshold):
    grid = ratio_grid(0.05, 0.95)
    calls = []

    def passes(ratio):  # accuracy falls with the ratio; within delta while ratio <= threshold
        calls.append(ratio)
        return ratio <= threshold + 1e-12

    found, probes = bisect_ratio(passes, grid)
    passing = [r for r in grid if r <= threshold + 1e-12]
    assert found == (passing[-1] if passing else None)
    assert len(calls) == len(probes) <= math.ceil(math.log2(len(grid) + 1)) == 5


def test_winners_keep_eq4_within_one_std_of_the_best_and_report_the_margin():
    rows = pd.DataFrame([(m, 0.5, s, a) for m, accs in {"random": [0.80, 0.82], "eq4": [0.84, 0.86],
                                                        "tdds": [0.85, 0.88]}.items() for s, a in enumerate(accs)],
                        columns=["method", "ratio", "seed", "pruned_test_accuracy"])
    [row] = winners(rows).to_dict("records")
    assert row["method"] == "eq4"  # 85.0 >= 86.5 - 2.1 (tdds's std)
    assert row["margin"] == pytest.approx(4.0) and row["beats_by_std"]


def test_the_rule_takes_the_largest_worst_margin_and_leave_one_out_tests_it_on_the_third():
    # margins over random: "hard" wins big on a and b but collapses on c; "safe" never loses much
    means = pd.DataFrame([(d, m, 0.9, v) for d, m, v in [
        ("a", "random", 50), ("a", "hard", 60), ("a", "safe", 52),
        ("b", "random", 50), ("b", "hard", 58), ("b", "safe", 51),
        ("c", "random", 50), ("c", "hard", 20), ("c", "safe", 49)]], columns=["dataset", "method", "ratio", "mean"])
    assert minimax_choice(means) == {0.9: "safe"}
    tie = pd.concat([means, pd.DataFrame([(d, "eq4", 0.9, v) for d, v in [("a", 51.8), ("b", 50.7), ("c", 48.7)]],
                                         columns=means.columns)])
    assert minimax_choice(tie) == {0.9: "eq4"}  # worst margin -1.3 against safe's -1.0: within 0.5, eq4 stays
    assert minimax_choice(tie, tolerance=0.2) == {0.9: "safe"}
    held = leave_one_out(means).set_index("left_out")
    assert held.loc["c", "method"] == "hard" and held.loc["c", "margin"] == -30  # fitted on a, b: fails on c
    assert held.loc["a", "method"] == "safe" and held.loc["a", "margin"] == 2


SMALL = {
    "ingest": {"options": {"num_samples": 600}},
    "erm_training": {"model": {"name": "mlp"}, "training": {"epochs": 3}},
}


@pytest.mark.slow
def test_tolerance_and_recommend_pipelines_measure_on_validation_and_export_a_whole_set_subset(kedro_project):
    sweep = {"executor": "serial", "torch_threads": 1, "cache": str(kedro_project / "cache")}
    recommend = {"candidates": ["random", "eq4"], "ratios": [0.5], "seeds": [0, 1],
                 "tolerance": {"delta": 0.05, "step": 0.25, "max_ratio": 0.75, "method": "random"}}
    run(kedro_project, {**SMALL, "sweep": sweep, "recommend": recommend}, pipeline="tolerance")
    data = kedro_project / "data"
    curve = pd.read_csv(latest(data / "08_reporting" / "tolerance_curve.csv"))
    subset = load_latest(data / "07_model_output" / "tolerance_subset.pt")
    assert subset["probes"] == len(curve) <= 2  # grid 0.25, 0.5, 0.75: at most 2 probes
    full = subset["full_validation_accuracy"]
    passing = curve[curve["mean"] >= full - 5.0]
    if subset["ratio"] is None:
        assert passing.empty or passing["ratio"].min() > curve["ratio"].min()
    else:
        assert subset["ratio"] in passing["ratio"].tolist()
        n = len(subset["kept"]) + len(subset["removed"])
        assert len(subset["removed"]) == round(subset["ratio"] * n) and n == 480  # 600 samples, 20 % for test
        assert not np.intersect1d(subset["kept"], subset["removed"]).size

    run(kedro_project, {**SMALL, "sweep": sweep, "recommend": recommend}, pipeline="recommend")
    table = pd.read_csv(latest(data / "08_reporting" / "recommendation.csv"))
    subsets = load_latest(data / "07_model_output" / "recommended_subsets.pt")
    [row] = table.to_dict("records")
    assert row["method"] in ("random", "eq4") and list(subsets) == ["0.5"]
    assert subsets["0.5"]["method"] == row["method"] and len(subsets["0.5"]["removed"]) == 240
    assert row["test_accuracy_whole_set"] == pytest.approx(100 * subsets["0.5"]["test_accuracy"])
