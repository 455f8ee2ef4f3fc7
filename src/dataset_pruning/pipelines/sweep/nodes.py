"""The sweep: every cell of the chosen preset (experiments/), one row per cell, logged as nested MLflow runs by the
catalog entry ``sweep_results``."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pandas as pd

from dataset_pruning.config import SweepParams, block
from dataset_pruning.data import load_dataset
from dataset_pruning.experiments import expand_grid, run_sweep
from dataset_pruning.pipelines import tracked
from dataset_pruning.selection import removal_count

LIST_COLUMNS = ("kept_per_class", "accuracy_curve", "full_accuracy_curve")


def cell_name(tags: dict[str, Any]) -> str:
    """``mnist1d·cnn1d·el2n·r0.30·s0·epochs`` (Eq. 3: ``e0.01``; another retraining model: ``mlp→cnn1d``)."""
    model = tags["model"] if tags["retrain_model"] == tags["model"] else f"{tags['model']}→{tags['retrain_model']}"
    budget = f"r{tags['ratio']:.2f}" if tags["ratio"] is not None else f"e{tags['eps_budget']}"
    parts = [tags["dataset"], model, tags["method"], budget, f"s{tags['seed']}", tags["budget"]]
    return "·".join(parts + (["validation"] if tags.get("evaluated_on") == "validation" else []))


def _check_ratios(cells, problems: list[str]) -> None:
    """Every ratio must remove something and keep something on its data set: checked before any training."""
    sizes: dict[str, int] = {}
    for cell in cells:
        data = cell.score.erm.data
        if data["dataset"] not in sizes:
            train, _ = load_dataset(data["dataset"], root=data["root"], seed=data["seed"], **data["options"])
            sizes[data["dataset"]] = len(train)
        ratio = cell.selection.get("ratio")
        if ratio is not None and cell.matched is None:
            try:
                removal_count(sizes[data["dataset"]], ratio)
            except ValueError as error:
                problems.append(f"  sweep ({data['dataset']}): {error}")


def table_row(cell, row: dict[str, Any], preset: str) -> dict[str, Any]:
    """A cell's row of ``sweep_results``: ``run_cell``'s fields, its name, the preset, lists as JSON."""
    out = {**row, "cell": cell_name(cell.tags), "preset": preset, "evaluated_on": cell.tags["evaluated_on"]}
    for column in LIST_COLUMNS:
        if column in out and not isinstance(out[column], str):
            out[column] = json.dumps(out[column])
    return out


def sweep_cells(params: dict, ingest: dict, erm: dict, scoring: dict, selection: dict, recommend: dict,
                log_cell: Callable[[dict], None] | None = None) -> tuple[pd.DataFrame, dict]:
    """sweep_results: one row per cell (tags, pruning metrics, times); sweep_metrics: the sweep's totals.

    ``log_cell`` (the catalog's ``sweep_progress``) receives each cell's row as soon as it is known, so the
    tracking shows a long sweep's cells while it runs."""
    started = time.perf_counter()
    p: SweepParams = block("sweep", params)
    preset = p.chosen()
    blocks = {"ingest": ingest, "erm_training": erm, "influence_scoring": scoring, "optimization_selection": selection,
              "recommend": recommend}
    base = {name: block(name, values).model_dump() for name, values in blocks.items()}
    methods = {name: method.model_dump() for name, method in p.methods.items()}
    cells = expand_grid(preset.model_dump(), methods, base)
    problems: list[str] = []
    _check_ratios(cells, problems)
    if problems:
        raise ValueError("invalid parameters, nothing was trained:\n" + "\n".join(sorted(set(problems))))
    on_row = None if log_cell is None else (lambda cell, row: log_cell(table_row(cell, row, p.preset)))
    table = run_sweep(cells, p.cache, executor=p.executor, address=p.dask.address, n_workers=p.dask.n_workers,
                      torch_threads=p.torch_threads, force=p.force, on_row=on_row)
    table = pd.DataFrame([table_row(cell, row, p.preset) for cell, row in zip(cells, table.to_dict("records"))])
    computed = table[table["computed"]]
    workers = 1 if p.executor == "serial" else p.dask.n_workers
    totals = {
        "cells": len(table), "cells_computed": len(computed),
        "node_seconds": time.perf_counter() - started,
        "retrain_floor_seconds": float(computed["retrain_seconds"].sum()) / workers,
    }
    return table, tracked(totals)
