"""Answers to "which method on my data?" and "how much can I remove within delta of the full data, and which
subset is it?", measured with the sweep's machinery (grid, tasks, cache) on a validation split of the training
set, then run once on the whole training set for the subset and its test accuracy (pipelines/recommend/).

- ``winners``: per ratio, the candidate with the best mean validation accuracy (Eq. 4, the paper's method, kept
  when within one std of it: the rule of docs/selection.md), with its margin over random.
- ``bisect_ratio``: the largest ratio of a grid whose validation accuracy stays within delta of the full data's,
  by bisection (accuracy assumed to fall as the ratio grows): at most ceil(log2(len(grid) + 1)) retrainings
  per seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from dataset_pruning.experiments.grid import expand_grid
from dataset_pruning.experiments.sweep import run_sweep


def preset(methods: list[str], ratios: list[float], seeds: list[int], *, validation: float, models: list | None = None,
           training: dict | None = None, datasets: list[str] | None = None) -> dict[str, Any]:
    """A sweep preset (``SweepPreset``'s fields) for these cells, one retraining budget (epochs)."""
    return {"datasets": datasets, "models": models or [], "methods": methods, "ratios": list(ratios), "eps": [],
            "seeds": list(seeds), "budgets": ["epochs"], "training": training or {}, "track_accuracy": False,
            "target_accuracy": None, "theorem1_random": False, "validation": validation}


def run_cells(cells, sweep: dict[str, Any]) -> pd.DataFrame:
    """``run_sweep`` with the sweep block's execution settings (cache, executor, Dask): one row per cell."""
    return run_sweep(cells, sweep["cache"], executor=sweep["executor"], address=sweep["dask"]["address"],
                     n_workers=sweep["dask"]["n_workers"], torch_threads=sweep["torch_threads"], force=sweep["force"])


def measure(methods: list[str], ratios: list[float], seeds: list[int], validation: float, *, config: dict[str, Any],
            base: dict[str, Any], sweep: dict[str, Any]) -> pd.DataFrame:
    """Rows of the cells (methods x ratios x seeds) on data set ``base['ingest']['dataset']``; ``validation`` > 0:
    measured on that fraction of the training set, else on the test set. ``config``: models, training."""
    spec = preset(methods, ratios, seeds, validation=validation, models=config.get("models"),
                  training=config.get("training"), datasets=[base["ingest"]["dataset"]])
    cells = expand_grid(spec, sweep["methods"], base)
    rows = run_cells(cells, sweep)
    rows["method"], rows["ratio"] = [c.method for c in cells], [c.selection["ratio"] for c in cells]
    return rows


def winners(rows: pd.DataFrame, baseline: str = "random", default: str = "eq4") -> pd.DataFrame:
    """Per ratio (rows: method, ratio, seed, pruned_test_accuracy): winner, its mean and std, the baseline's, the
    margin (winner's mean - baseline's, points) and whether it is at least the baseline's std."""
    stats = rows.groupby(["ratio", "method"])["pruned_test_accuracy"].agg(["mean", "std"]).fillna(0.0) * 100
    out = []
    for ratio, by_method in stats.groupby(level="ratio"):
        by_method = by_method.droplevel("ratio")
        best = by_method["mean"].idxmax()
        if default in by_method.index and by_method.loc[default, "mean"] >= (
                by_method.loc[best, "mean"] - by_method.loc[best, "std"]):
            best = default
        base = by_method.loc[baseline] if baseline in by_method.index else pd.Series({"mean": np.nan, "std": np.nan})
        margin = by_method.loc[best, "mean"] - base["mean"]
        out.append({"ratio": ratio, "method": best, "mean": by_method.loc[best, "mean"],
                    "std": by_method.loc[best, "std"], f"{baseline}_mean": base["mean"], f"{baseline}_std": base["std"],
                    "margin": margin, "beats_by_std": bool(margin >= base["std"])})
    return pd.DataFrame(out)


def bisect_ratio(passes: Callable[[float], bool], grid: list[float]) -> tuple[float | None, list[float]]:
    """(the largest ratio of ``grid`` (increasing) that ``passes``, or None; the ratios probed, in order).
    Bisection: at most ceil(log2(len(grid) + 1)) calls of ``passes``."""
    low, high, probes = -1, len(grid), []  # grid[low] passes (ratio 0: the full data), grid[high] fails
    while high - low > 1:
        middle = (low + high) // 2
        probes.append(grid[middle])
        if passes(grid[middle]):
            low = middle
        else:
            high = middle
    assert len(probes) <= math.ceil(math.log2(len(grid) + 1))
    return (grid[low] if low >= 0 else None), probes


def ratio_grid(step: float, largest: float) -> list[float]:
    """step, 2 step, ... up to ``largest`` (rounded to 6 decimals)."""
    return [round(step * k, 6) for k in range(1, int(round(largest / step)) + 1)]


def removed_indices(cache: str, cell_key: str) -> np.ndarray:
    """The training indices a finished cell removed (int64, sorted)."""
    return np.load(Path(cache) / "cells" / cell_key / "removed.npy", allow_pickle=False).astype(np.int64)


__all__ = ["bisect_ratio", "measure", "preset", "ratio_grid", "removed_indices", "run_cells", "winners"]
