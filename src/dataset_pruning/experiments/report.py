"""Tables and figures of a sweep from its cells table (one row per cell: the sweep's ``sweep_results``, or the
same columns read back from MLflow): accuracy and gap against ratio, Theorem 1's correlations, per-class coverage,
cross-architecture and training efficiency. Plain pandas / matplotlib; the report pipeline reads the store."""

from __future__ import annotations

import json
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

GROUP = ["preset", "dataset", "model", "retrain_model", "budget"]  # one section (and figure panel) each


def _mean_std(values: pd.Series, scale: float = 1.0, digits: int = 1) -> str:
    values = values.dropna() * scale
    if values.empty:
        return ""
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f} (1 seed)"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _ordered_methods(methods, baseline: str) -> list[str]:
    methods = sorted(set(methods))
    return ([baseline] if baseline in methods else []) + [m for m in methods if m != baseline]


def ratio_table(cells: pd.DataFrame, value: str, baseline: str = "random", scale: float = 100.0,
                digits: int = 1) -> str:
    """Markdown: one row per method (the baseline first), one column per ratio, mean ± std over seeds."""
    ratios = sorted(cells["ratio"].dropna().unique())
    lines = ["| method | " + " | ".join(f"{r:.0%} removed" for r in ratios) + " |",
             "|---|" + "---|" * len(ratios)]
    for method in _ordered_methods(cells["method"], baseline):
        mine = cells[cells["method"] == method]
        row = [_mean_std(mine[mine["ratio"] == r][value], scale, digits) for r in ratios]
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def beats_baseline(cells: pd.DataFrame, method: str, baseline: str = "random", value: str = "generalization_gap",
                   lower_is_better: bool = True) -> tuple[int, int]:
    """(pairs where ``method``'s value is better than the baseline's, pairs compared), over (ratio, seed)."""
    key = ["ratio", "seed"]
    a = cells[cells["method"] == method].set_index(key)[value]
    b = cells[cells["method"] == baseline].set_index(key)[value]
    joined = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    better = (joined["a"] < joined["b"]) if lower_is_better else (joined["a"] > joined["b"])
    return int(better.sum()), len(joined)


def margin_table(cells: pd.DataFrame, baseline: str = "random", value: str = "pruned_test_accuracy",
                 scale: float = 100.0) -> tuple[str, list[str]]:
    """Markdown: each method's mean minus the baseline's mean per ratio (points), marked with a check where the
    margin is at least the baseline's std over seeds (issue 16's bar); and the methods that clear it at every
    ratio."""
    ratios = sorted(cells["ratio"].dropna().unique())
    base = cells[cells["method"] == baseline].groupby("ratio")[value]
    base_mean, base_std = base.mean() * scale, base.std(ddof=1) * scale
    lines = ["| method | " + " | ".join(f"{r:.0%} removed" for r in ratios) + " |", "|---|" + "---|" * len(ratios),
             f"| ({baseline}'s std) | " + " | ".join(f"{base_std.get(r, math.nan):.1f}" for r in ratios) + " |"]
    clear = []
    for method in _ordered_methods(cells["method"], baseline)[1:]:
        mine = cells[cells["method"] == method].groupby("ratio")[value].mean() * scale
        margins = [mine.get(r, math.nan) - base_mean.get(r, math.nan) for r in ratios]
        passed = [m >= base_std.get(r, math.nan) for m, r in zip(margins, ratios)]
        lines.append(f"| {method} | " + " | ".join(f"{m:+.1f}" + (" ✓" if ok else "") for m, ok in
                                                  zip(margins, passed)) + " |")
        if all(passed):
            clear.append(method)
    return "\n".join(lines), clear


def correlations(x, y) -> dict[str, float]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": math.nan, "spearman": math.nan, "n": len(x)}
    from scipy import stats  # imported on use (SciPy's stats: ~60 MB at every start)

    return {"pearson": float(stats.pearsonr(x, y).statistic), "spearman": float(stats.spearmanr(x, y).statistic),
            "n": len(x)}


def theorem1(cells: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Pearson and Spearman of (eps/n, gap) and (m/n^2, gap) per (preset, data set): over all its cells, over
    its Eq. 3 grid, and at each (ratio, budget), where m is fixed; the keys name the cells."""
    out = {}
    for (preset, dataset), cells_ in cells.groupby(["preset", "dataset"], dropna=False):
        where = f"{preset}, {dataset}"
        parts = {f"{where}, all cells": cells_}
        eq3 = cells_[cells_["eps_budget"].notna()]
        if 0 < len(eq3) < len(cells_):
            parts[f"{where}, Eq. 3 grid + random of the same sizes"] = eq3
        for name, part in parts.items():
            out[f"{name}: eps/n vs gap"] = correlations(part["eps_over_n"], part["generalization_gap"])
            out[f"{name}: m/n^2 vs gap"] = correlations(part["m_over_n2"], part["generalization_gap"])
        # at one ratio m is fixed: does a smaller eps (another method, same m) mean a smaller gap?
        for (ratio, budget), part in cells_[cells_["ratio"].notna()].groupby(["ratio", "budget"]):
            out[f"{where}, {ratio:.0%} removed, budget {budget} (m fixed): eps/n vs gap"] = correlations(
                part["eps_over_n"], part["generalization_gap"])
    return out


def _first_reaching(curve: list, target: float) -> tuple[float, float]:
    for epoch, seconds, accuracy in curve:
        if accuracy >= target:
            return epoch, seconds
    return math.nan, math.nan


def efficiency_table(cells: pd.DataFrame, target: float) -> str:
    """Epochs and training seconds to reach ``target`` test accuracy, full data vs each pruned method."""
    tracked = cells[cells["accuracy_curve"].map(bool)]
    if tracked.empty:
        return ""
    rows = []
    full = tracked.drop_duplicates("seed")
    reached = [_first_reaching(curve, target) for curve in full["full_accuracy_curve"]]
    rows.append(("full data", [r[0] for r in reached], [r[1] for r in reached], full["full_test_accuracy"],
                 full["erm_seconds"]))
    for (method, ratio), part in tracked.groupby(["method", "ratio"]):
        reached = [_first_reaching(curve, target) for curve in part["accuracy_curve"]]
        rows.append((f"{method}, {ratio:.0%} removed", [r[0] for r in reached], [r[1] for r in reached],
                     part["pruned_test_accuracy"], part["retrain_seconds"]))
    lines = [f"| training set | epochs to {target:.0%} | seconds to {target:.0%} | final test accuracy % | "
             "training seconds |", "|---|---|---|---|---|"]
    for name, epochs, seconds, accuracy, total in rows:
        lines.append(f"| {name} | {_mean_std(pd.Series(epochs), digits=1)} | {_mean_std(pd.Series(seconds))} | "
                     f"{_mean_std(pd.Series(accuracy), 100)} | {_mean_std(pd.Series(total))} |")
    return "\n".join(lines)


def accuracy_figure(cells: pd.DataFrame, baseline: str = "random"):
    groups = list(cells[cells["ratio"].notna()].groupby(GROUP))
    columns = min(max(len(groups), 1), 2)
    rows = -(-max(len(groups), 1) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.5 * rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, (key, part) in zip(axes.flat, groups):
        for index, method in enumerate(_ordered_methods(part["method"], baseline)):
            mine = part[part["method"] == method].groupby("ratio")["pruned_test_accuracy"]
            mean, std = mine.mean() * 100, mine.std(ddof=1).fillna(0) * 100
            style = {"color": "black", "linewidth": 2.5} if method == baseline else {"color": plt.cm.tab20(index % 20)}
            ax.errorbar(mean.index * 100, mean.values, yerr=std.values, marker="o", capsize=3, label=method, **style)
        ax.axhline(part["full_test_accuracy"].mean() * 100, color="grey", linestyle="--", label="full data")
        preset, dataset, model, retrain, budget = key
        ax.set_title(f"{preset}: {dataset}, {model}" + (f" → {retrain}" if retrain != model else "")
                     + f", budget: {budget}")
        ax.set_xlabel("removed (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def theorem1_figure(cells: pd.DataFrame):
    part = cells[cells["eps_budget"].notna()]
    part = part if len(part) else cells
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, column, label in ((axes[0], "eps_over_n", "eps / n"), (axes[1], "m_over_n2", "m / n²")):
        for method, mine in part.groupby("method"):
            ax.scatter(mine[column], mine["generalization_gap"], s=18, label=method, alpha=0.8)
        stat = correlations(part[column], part["generalization_gap"])
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test-loss gap (after - before)")
        ax.set_title(f"Pearson {stat['pearson']:.2f}, Spearman {stat['spearman']:.2f} (n = {stat['n']})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def parse_lists(cells: pd.DataFrame) -> pd.DataFrame:
    """JSON columns (per-class counts, accuracy curves) back to lists."""
    cells = cells.copy()
    for column in ("kept_per_class", "accuracy_curve", "full_accuracy_curve"):
        if column in cells:
            cells[column] = [json.loads(v) if isinstance(v, str) else (v if isinstance(v, list) else [])
                             for v in cells[column]]
    return cells


def build_report(cells: pd.DataFrame, *, baseline: str = "random", target_accuracy: float = 0.9,
                 source: str = "") -> tuple[str, dict[str, Any]]:
    """(markdown page, {figure name: matplotlib figure}) from the cells table."""
    cells = parse_lists(cells)
    cells = cells.sort_values([*GROUP, "method", "ratio", "seed"], na_position="last")
    out = ["# Results: every method across ratios and seeds", "",
           "Generated by `kedro run --pipeline=report` from the MLflow store (no number below is typed by hand); "
           f"{len(cells)} cells{source}. Test accuracy in %, mean ± std over seeds; the gap is the test loss after "
           "pruning minus before (Theorem 1's quantity). How to rerun: `docs/experiments.md`.", ""]
    ratio_cells = cells[cells["ratio"].notna()]
    for key, part in ratio_cells.groupby(GROUP):
        preset, dataset, model, retrain, budget = key
        model_text = model if retrain == model else f"prune with {model}, retrain {retrain}"
        full = _mean_std(part.drop_duplicates("seed")["full_test_accuracy"], 100)
        measured = "Test"
        if "evaluated_on" in part and (part["evaluated_on"] == "validation").all():
            measured = "Validation"  # a held-out part of the training set: for choosing, not for reporting
        out += [f"## {preset}: {dataset}, {model_text}, retraining budget: {budget}", ""]
        if measured == "Validation":
            out += ["Measured on a stratified validation split of the training set (held out from ERM, scoring "
                    "and retraining), not on the test set: these cells choose a method, they do not report one.", ""]
        out += [f"Full data: {full} {measured.lower()} accuracy ({part['seed'].nunique()} seeds).", "",
                f"{measured} accuracy (%):", "", ratio_table(part, "pruned_test_accuracy", baseline), "",
                f"Generalization gap ({measured.lower()} loss after - before):", "",
                ratio_table(part, "generalization_gap", baseline, scale=1.0, digits=3), "",
                "Smallest fraction of a class kept (coverage; 100 = every class keeps all its samples):", "",
                ratio_table(part, "min_class_kept_fraction", baseline), ""]
        best = part.groupby(["ratio", "method"])["pruned_test_accuracy"].mean().groupby("ratio").idxmax()
        out += ["Best mean per ratio: " + ", ".join(f"{r:.0%} {m}" for r, (_, m) in best.items()) + ".", ""]
        wins = [(m, *beats_baseline(part, m, baseline)) for m in _ordered_methods(part["method"], baseline)
                if m != baseline]
        out += [f"(ratio, seed) pairs where the method's gap is below {baseline}'s: "
                + ", ".join(f"{m} {w}/{k}" for m, w, k in wins if k) + ".", ""]
        margins, clear = margin_table(part, baseline)
        out += [f"Mean {measured.lower()} accuracy minus {baseline}'s (points; ✓: by at least {baseline}'s std over "
                "seeds):", "",
                margins, "", f"At every ratio by at least {baseline}'s std: " + (", ".join(clear) or "none") + ".",
                "", "Theorem 1's eps/n (x 1e5; eps = ||sum of the removed last-layer S_i||):", "",
                ratio_table(part, "eps_over_n", baseline, scale=1e5, digits=2), ""]
    stats_ = theorem1(cells)
    out += ["## Theorem 1: does eps/n predict the gap?", "", "| cells | Pearson | Spearman | n |", "|---|---|---|---|"]
    out += [f"| {name} | {s['pearson']:.3f} | {s['spearman']:.3f} | {s['n']} |" for name, s in stats_.items()]
    out += ["", "![Theorem 1](figures/theorem1.png)", ""]
    efficiency = efficiency_table(cells, target_accuracy)
    if efficiency:
        out += ["## Training efficiency", "", efficiency, ""]
    out += ["![accuracy against ratio](figures/accuracy_vs_ratio.png)", ""]
    figures = {"accuracy_vs_ratio": accuracy_figure(ratio_cells, baseline), "theorem1": theorem1_figure(cells)}
    return "\n".join(out), figures
