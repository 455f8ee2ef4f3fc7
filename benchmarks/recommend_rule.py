"""The rule behind the default (`recommend.by_ratio`), recomputed from the sweep's validation cells: per ratio the
candidate with the largest worst margin over random across the data sets, and the leave-one-data-set-out check.

    python benchmarks/recommend_rule.py [--presets ...] [--methods random eq4 tdds herding dual dual_beta d2]

Reads the finished cells of the given validation presets (their grids expanded from conf/base, so exactly those
cells) from the sweep cache (sweep.cache); run the presets first (docs/selection.md, "The default").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from dataset_pruning.config import validate_parameters
from dataset_pruning.config_loader import ProjectConfigLoader
from dataset_pruning.experiments.grid import expand_grid
from dataset_pruning.experiments.recommend import leave_one_out, margins, minimax_choice
from dataset_pruning.settings import CONFIG_LOADER_ARGS

PRESETS = ["rule_validation", "new_candidates_validation", "fmnist_validation"]
BLOCKS = ("ingest", "erm_training", "influence_scoring", "optimization_selection", "recommend")


def validation_means(presets: list[str], methods: list[str]) -> pd.DataFrame:
    """Mean validation accuracy (%) per data set, method and ratio over the finished cells of ``presets``."""
    params = validate_parameters(ProjectConfigLoader("conf", **CONFIG_LOADER_ARGS)["parameters"])
    sweep, base = params["sweep"], {name: params[name].model_dump() for name in BLOCKS}
    methods_of = {name: method.model_dump() for name, method in sweep.methods.items()}
    rows, missing = [], 0
    for name in presets:
        for cell in expand_grid(sweep.presets[name].model_dump(), methods_of, base):
            result = Path(sweep.cache) / "cells" / cell.key / "result.json"
            if cell.method not in methods:
                continue
            if result.is_file():
                rows.append({**json.loads(result.read_text()), "method": cell.method})
            else:
                missing += 1
    if missing:
        print(f"({missing} cells of these presets are not in the cache: run them first)")
    cells = pd.DataFrame(rows)
    return (cells.groupby(["dataset", "method", "ratio"])["pruned_test_accuracy"].mean() * 100).rename(
        "mean").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--methods", nargs="+",
                        default=["random", "eq4", "tdds", "herding", "dual", "dual_beta", "d2", "d2_cut04"])
    args = parser.parse_args()
    means = validation_means(args.presets, args.methods)
    table = margins(means).pivot_table(index=["ratio", "method"], columns="dataset", values="margin")
    print("margin over random (validation accuracy, points):\n" + table.round(2).to_string())
    print("\nminimax choice per ratio:", minimax_choice(means))
    print("\nleave one data set out (the choice fitted on the others, its margin on the one left out):")
    print(leave_one_out(means).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
