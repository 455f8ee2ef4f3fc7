"""The report: docs/results.md and its figures from the sweep cells in the MLflow store (nothing else is read)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dataset_pruning.config import ReportParams, block
from dataset_pruning.experiments.report import build_report

TAGS = ("cell_key", "preset", "dataset", "model", "retrain_model", "method", "scorer", "solver", "budget",
        "evaluated_on", "kept_per_class", "accuracy_curve", "full_accuracy_curve")
NUMERIC_TAGS = ("ratio", "eps_budget", "seed")


def cells_from_runs(runs: pd.DataFrame, sweep_run: str | None = None) -> pd.DataFrame:
    """The sweep's cells table back from ``mlflow.search_runs`` rows: the cells of each preset's newest sweep run
    (or of the one sweep run ``sweep_run``; a cell that two presets share stays in both), tags and metrics under
    their own names. A sweep run logs every cell of its preset, cached or computed, so its newest run holds the
    preset as configured now: a cell an earlier configuration had (another key) is not mixed in."""
    parent = "tags.mlflow.parentRunId"
    runs = runs.sort_values("start_time", ascending=False)  # newest first
    if sweep_run:
        runs = runs[runs[parent] == sweep_run]
        if runs.empty:
            raise ValueError(f"report.sweep_run {sweep_run}: the MLflow store has no sweep cells under that run")
    elif parent in runs and "tags.preset" in runs:  # the run of each preset's newest cell
        newest = runs.drop_duplicates("tags.preset")[parent]
        runs = runs[runs[parent].isin(set(newest))]
    key = [c for c in ("tags.preset", "tags.cell_key") if c in runs]
    runs = runs.drop_duplicates(key)
    empty = pd.Series(None, index=runs.index, dtype=object)  # a tag no cell set is not a column of search_runs
    cells = pd.DataFrame({name: runs.get(f"tags.{name}", empty) for name in TAGS})
    for name in NUMERIC_TAGS:
        cells[name] = pd.to_numeric(runs.get(f"tags.{name}", empty), errors="coerce")
    metrics = runs[[c for c in runs.columns if c.startswith("metrics.")]]
    cells = pd.concat([cells, metrics.rename(columns=lambda c: c.removeprefix("metrics."))], axis=1)
    return cells.reset_index(drop=True)


def write_report(sweep_runs: pd.DataFrame, params: dict) -> tuple[str, dict[str, Any]]:
    """results_page (markdown) and results_figures ({name: figure})."""
    p: ReportParams = block("report", params)
    cells = cells_from_runs(sweep_runs, p.sweep_run)
    presets = ", ".join(sorted(cells["preset"].dropna().unique()))
    return build_report(cells, baseline=p.baseline, target_accuracy=p.target_accuracy,
                        source=f" of the sweep presets {presets}")
