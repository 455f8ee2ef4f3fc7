"""``kedro run --pipeline=recommend``: the candidate methods measured on a validation split of the configured data
set at the asked ratios, the winner per ratio with its margin over random, and the winner's subset of the whole
training set. ``kedro run --pipeline=tolerance``: the largest ratio within ``delta`` of the full data's validation
accuracy, its accuracy-against-ratio curve, and that subset. Both reuse the sweep's cache (experiments/)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from dataset_pruning.config import block
from dataset_pruning.experiments.recommend import bisect_ratio, measure, ratio_grid, removed_indices, winners
from dataset_pruning.pipelines import tracked

log = logging.getLogger(__name__)
BLOCKS = ("ingest", "erm_training", "influence_scoring", "optimization_selection", "recommend")


def _setting(sweep: dict, blocks: tuple[dict, ...]) -> tuple[dict, dict, dict]:
    """(the recommend block, the sweep block with its methods, the base blocks), validated."""
    base = {name: block(name, values).model_dump() for name, values in zip(BLOCKS, blocks)}
    return base["recommend"], block("sweep", sweep).model_dump(), base


def _whole_set_subset(method: str, ratio: float, *, config: dict, base: dict, sweep: dict) -> dict[str, Any]:
    """``method`` at ``ratio`` on the whole training set (the first seed, measured on the test set): its removed
    and kept indices and test accuracy."""
    rows = measure([method], [ratio], config["seeds"][:1], 0.0, config=config, base=base, sweep=sweep)
    [row] = rows.to_dict("records")
    removed = removed_indices(sweep["cache"], row["cell_key"])
    return {"removed": removed, "kept": np.setdiff1d(np.arange(row["n"]), removed),
            "test_accuracy": row["pruned_test_accuracy"], "full_test_accuracy": row["full_test_accuracy"]}


def recommend_methods(sweep: dict, *blocks: dict) -> tuple[pd.DataFrame, dict, dict]:
    """recommendation: per ratio the winner on validation, its margin over random and its test accuracy on the
    whole training set; recommended_subsets: {ratio: {method, removed, kept}}; metrics per ratio."""
    config, sweep, base = _setting(sweep, blocks)
    seeds, ratios = config["seeds"], config["ratios"]
    rows = measure(config["candidates"], ratios, seeds, config["validation"], config=config, base=base, sweep=sweep)
    table = winners(rows)
    subsets, tests = {}, []
    for entry in table.to_dict("records"):
        subset = _whole_set_subset(entry["method"], entry["ratio"], config=config, base=base, sweep=sweep)
        subsets[f"{entry['ratio']:g}"] = {"method": entry["method"], **subset}
        tests.append(100 * subset["test_accuracy"])
        log.info("recommend: at %.0f %% removed, %s (validation %.2f +- %.2f %%, random %.2f +- %.2f, margin %+.2f); "
                 "on the whole training set: test accuracy %.2f %%", 100 * entry["ratio"], entry["method"],
                 entry["mean"], entry["std"], entry["random_mean"], entry["random_std"], entry["margin"], tests[-1])
    table["test_accuracy_whole_set"] = tests
    metrics = {f"r{100 * r['ratio']:.0f}.{key}": float(r[key]) for r in table.to_dict("records")
               for key in ("margin", "mean", "test_accuracy_whole_set")}
    return table, subsets, tracked(metrics)


def smallest_subset(sweep: dict, *blocks: dict) -> tuple[pd.DataFrame, dict, dict]:
    """tolerance_curve: (ratio, validation accuracy mean / std over seeds) of every probe; tolerance_subset: the
    largest ratio within delta of the full data's validation accuracy, its method, removed and kept indices and
    test accuracy on the whole training set; metrics."""
    config, sweep, base = _setting(sweep, blocks)
    tolerance, seeds = config["tolerance"], config["seeds"]
    method, curve = tolerance["method"], []

    def passes(ratio: float) -> bool:
        """Validation accuracy (mean over seeds) at ``ratio`` within delta of the full data's (the same ERMs')."""
        rows = measure([method], [ratio], seeds, config["validation"], config=config, base=base, sweep=sweep)
        accuracy = 100 * rows["pruned_test_accuracy"]
        curve.append({"ratio": ratio, "mean": accuracy.mean(), "std": accuracy.std(ddof=1) if len(rows) > 1 else 0.0,
                      "full_mean": 100 * rows["full_test_accuracy"].mean()})
        log.info("tolerance: %.0f %% removed: validation %.2f %% (full %.2f %%)", 100 * ratio, curve[-1]["mean"],
                 curve[-1]["full_mean"])
        return curve[-1]["mean"] >= curve[-1]["full_mean"] - 100 * tolerance["delta"]

    ratio, _ = bisect_ratio(passes, ratio_grid(tolerance["step"], tolerance["max_ratio"]))
    result: dict[str, Any] = {"ratio": ratio, "method": method, "delta": tolerance["delta"],
                              "full_validation_accuracy": curve[0]["full_mean"], "probes": len(curve)}
    if ratio is None:
        log.warning("tolerance: no ratio of the grid keeps validation accuracy within %.2f points",
                    100 * tolerance["delta"])
    else:
        result |= _whole_set_subset(method, ratio, config=config, base=base, sweep=sweep)
        log.info("tolerance: %.0f %% removed keeps validation accuracy within %.2f points (%s); on the whole training "
                 "set test accuracy %.2f %% (full %.2f %%), %d kept", 100 * ratio, 100 * tolerance["delta"], method,
                 100 * result["test_accuracy"], 100 * result["full_test_accuracy"], len(result["kept"]))
    metrics = {key: float(result[key]) for key in ("ratio", "probes", "full_validation_accuracy", "test_accuracy",
                                                  "full_test_accuracy") if result.get(key) is not None}
    return pd.DataFrame(curve).sort_values("ratio"), result, tracked(metrics)
