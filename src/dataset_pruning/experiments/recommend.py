"""Answers to "which method on my data?" and "how much can I remove within delta of the full data, and which
subset is it?", measured with the sweep's machinery (grid, tasks, cache) on a validation split of the training
set, then run once on the whole training set for the subset and its test accuracy (pipelines/recommend/).

- ``winners``: per ratio, the candidate with the best mean validation accuracy (Eq. 4, the paper's method, kept
  when within one std of it: the rule of docs/selection.md), with its margin over random.
- ``minimax_choice``: the rule behind ``recommend.by_ratio`` (docs/selection.md): per ratio, the candidate whose
  worst margin over random across the data sets is largest; ``leave_one_out`` fits it on all data sets but one and
  reports the margins on the one left out.
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

from dataset_pruning.config import SweepPreset
from dataset_pruning.experiments.grid import expand_grid
from dataset_pruning.experiments.sweep import run_sweep


def preset(methods: list[str], ratios: list[float], seeds: list[int], *, validation: float, models: list | None = None,
           training: dict | None = None, datasets: list[str] | None = None) -> dict[str, Any]:
    """A sweep preset for these cells (``SweepPreset``, its defaults for the rest: one retraining budget, epochs)."""
    return SweepPreset(datasets=datasets, models=models or [], methods=methods, ratios=ratios, seeds=seeds,
                       training=training or {}, validation=validation).model_dump()


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


def margins(means: pd.DataFrame, baseline: str = "random") -> pd.DataFrame:
    """means: columns dataset, method, ratio, mean (validation accuracy) -> the same rows with ``margin`` = mean -
    the baseline's mean on that data set and ratio (the baseline's own rows dropped)."""
    base = means[means["method"] == baseline].set_index(["dataset", "ratio"])["mean"]
    out = means[means["method"] != baseline].copy()
    out["margin"] = out["mean"].to_numpy() - base.loc[list(zip(out["dataset"], out["ratio"]))].to_numpy()
    return out


def minimax_choice(means: pd.DataFrame, baseline: str = "random", default: str = "eq4",
                   tolerance: float = 0.5) -> dict[float, str]:
    """{ratio: the method with the largest worst margin over ``baseline`` across the data sets}, except that
    ``default`` (the paper's Eq. 4) is kept while its worst margin is within ``tolerance`` points of the best one
    (differences below the seed noise do not move the default). Only methods measured on every data set at that
    ratio compete."""
    table = margins(means, baseline)
    datasets = table["dataset"].nunique()
    choice = {}
    for ratio, part in table.groupby("ratio"):
        worst = part.groupby("method")["margin"].agg(["min", "count"])
        worst = worst[worst["count"] == datasets]["min"]
        best = str(worst.idxmax())
        keep = default in worst.index and worst[default] >= worst[best] - tolerance
        choice[float(ratio)] = default if keep else best
    return choice


def leave_one_out(means: pd.DataFrame, baseline: str = "random") -> pd.DataFrame:
    """For each data set left out: the minimax choice fitted on the others, per ratio, and its margin on the one
    left out (rows: left_out, ratio, method, margin)."""
    table, rows = margins(means, baseline), []
    for left in sorted(means["dataset"].unique()):
        choice = minimax_choice(means[means["dataset"] != left], baseline)
        held = table[table["dataset"] == left].set_index(["ratio", "method"])["margin"]
        rows += [{"left_out": left, "ratio": ratio, "method": method,
                  "margin": float(held.get((ratio, method), np.nan))} for ratio, method in choice.items()]
    return pd.DataFrame(rows)


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


__all__ = ["bisect_ratio", "leave_one_out", "margins", "measure", "minimax_choice", "preset", "ratio_grid",
           "removed_indices", "run_cells", "winners"]
