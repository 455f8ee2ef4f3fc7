"""The rule behind the default (`recommend.by_ratio`), recomputed from the sweep's validation cells: per ratio the
candidate with the largest worst margin over random across the data sets, and the leave-one-data-set-out check.

    python benchmarks/recommend_rule.py [--cache data/09_sweep] [--methods random eq4 tdds herding dual_beta d2]

Reads every finished cell under the cache measured on a validation split (epochs budget); the data sets and
ratios are those found. The validation presets that feed it: coverage_validation, coverage_digits_validation,
fmnist_validation, new_candidates_validation (docs/selection.md, "The default").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from dataset_pruning.experiments.recommend import leave_one_out, margins, minimax_choice


def validation_means(cache: Path, methods: list[str]) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for p in sorted((cache / "cells").glob("*/result.json"))]
    cells = pd.DataFrame([r for r in rows if r.get("evaluated_on") == "validation" and r["budget"] == "epochs"
                          and r["method"] in methods])
    return (cells.groupby(["dataset", "method", "ratio"])["pruned_test_accuracy"].mean() * 100).rename(
        "mean").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("data/09_sweep"))
    parser.add_argument("--methods", nargs="+", default=["random", "eq4", "tdds", "herding", "dual_beta", "d2"])
    args = parser.parse_args()
    means = validation_means(args.cache, args.methods)
    table = margins(means).pivot_table(index=["ratio", "method"], columns="dataset", values="margin")
    print("margin over random (validation accuracy, points):\n" + table.round(2).to_string())
    print("\nminimax choice per ratio:", minimax_choice(means))
    print("\nleave one data set out (the choice fitted on the others, its margin on the one left out):")
    print(leave_one_out(means).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
