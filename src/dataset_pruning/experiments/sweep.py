"""Run a sweep's cells: ERM once per (data, model, seed), scoring once per (ERM, scorer), selection once per
(score, ratio or eps) whatever the retraining budget or model, one retraining per cell, serially or on
``dask.distributed`` workers (one torch and one BLAS thread each, so both give the same figures for a seed).

Finished pieces are read from the cache instead of computed (``force`` recomputes), so an interrupted sweep
resumes where it stopped and a finished one trains nothing. Longer work is submitted first (ERM, scoring and
selection, then cells by their retraining size), so the workers finish together; on Dask a cell starts as soon as
its own selection is done, so the scoring and selection of one seed overlap the retraining of another.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from dataset_pruning.experiments.grid import CellSpec
from dataset_pruning.experiments.tasks import finished_result, run_cell, run_erm, run_score, run_selection
from dataset_pruning.runtime import dask_client
from dataset_pruning.scoring import scorer_options

log = logging.getLogger(__name__)


class _Serial:
    """Runs each task when submitted (the specs arrive in dependency order)."""

    def submit(self, fn: Callable, *args, priority: int = 0, **kwargs):
        return fn(*args, **kwargs)

    def gather(self, handles: list, on_done: Callable[[dict], None]) -> list:
        for handle in handles:
            on_done(handle)
        return handles


class _Dask:
    def __init__(self, client) -> None:
        self.client = client

    def submit(self, fn: Callable, *args, priority: int = 0, **kwargs):
        return self.client.submit(fn, *args, priority=priority, pure=False, **kwargs)

    def gather(self, handles: list, on_done: Callable[[dict], None]) -> list:
        from dask.distributed import as_completed

        for future in as_completed(handles):
            on_done(future.result())
        return self.client.gather(handles)


def _cost(cell: CellSpec) -> float:
    """Relative retraining cost, for the order of submission: kept fraction x epochs (steps budget: ERM's)."""
    ratio = cell.selection.get("ratio") or 0.5
    return 1.0 if cell.budget == "steps" else 1.0 - ratio


def run_sweep(cells: list[CellSpec], cache: str, *, executor: str = "dask", address: str | None = None,
              n_workers: int = 2, torch_threads: int = 1, force: bool = False,
              progress: Callable[[str], None] | None = None,
              on_row: Callable[[CellSpec, dict], None] | None = None) -> pd.DataFrame:
    """One row per cell (``tasks.run_cell``'s fields, ``computed`` False for a cell read from the cache).

    ``on_row(cell, row)`` is called for each cell as its row is known (cached ones first, then as they finish).
    """
    say = progress or log.info
    rows: dict[str, dict] = {}
    todo = []
    for cell in cells:
        done = None if force else finished_result(Path(cache) / "cells" / cell.key)
        if done is not None:
            rows[cell.key] = {**done, "computed": False}
        else:
            todo.append(cell)
    say(f"sweep: {len(cells)} cells, {len(rows)} finished before, {len(todo)} to run ({executor})")
    by_key = {cell.key: cell for cell in cells}
    if on_row is not None:
        for key, row in rows.items():
            on_row(by_key[key], row)
    if todo:
        start = time.perf_counter()
        finished = [0]

        def on_done(row: dict) -> None:
            if on_row is not None:
                on_row(by_key[row["cell_key"]], row)
            finished[0] += 1
            say(f"  cell {finished[0]}/{len(todo)} {row.get('method')} ratio={row.get('ratio')} eps={row.get('eps')} "
                f"seed={row.get('seed')} budget={row.get('budget')}: test accuracy {row['pruned_test_accuracy']:.4f} "
                f"({time.perf_counter() - start:.0f} s)")

        if executor == "serial":
            rows.update(_submit(_Serial(), todo, cache, torch_threads, force, on_done))
        elif executor == "dask":
            with dask_client(address, n_workers) as client:
                rows.update(_submit(_Dask(client), todo, cache, torch_threads, force, on_done))
        else:
            raise ValueError(f"unknown executor {executor!r}; known: dask, serial")
    return pd.DataFrame([rows[cell.key] for cell in cells])


def _submit(runner, todo: list[CellSpec], cache: str, threads: int, force: bool, on_done) -> dict[str, dict]:
    erm, scores, selections, cells = {}, {}, {}, {}
    sharing: dict[str, Any] = {}  # ERM key -> the last score task that keeps short runs (EL2N, GraNd) for it
    top = 10**6
    for cell in todo:
        erm_spec = cell.score.erm
        if erm_spec.key not in erm:
            erm[erm_spec.key] = runner.submit(run_erm, erm_spec, cache, threads, force, priority=top + 3)
        if cell.score.key not in scores:
            shares = "store" in scorer_options(cell.score.scorer)
            scores[cell.score.key] = runner.submit(run_score, cell.score, erm[erm_spec.key], cache, threads, force,
                                                   sharing.get(erm_spec.key) if shares else None, priority=top + 2)
            if shares:
                sharing[erm_spec.key] = scores[cell.score.key]
    selection_of = {cell.key: cell.selected.key for cell in todo}
    for cell in sorted(todo, key=lambda c: c.matched is not None):  # matched selections after their match
        chosen = cell.selected
        if chosen.key in selections:
            continue
        matched = None
        if cell.matched:  # the matched cell's selection, or its row when it finished in an earlier run
            matched = selections.get(selection_of.get(cell.matched)) or finished_result(
                Path(cache) / "cells" / cell.matched)
        selections[chosen.key] = runner.submit(run_selection, chosen, scores[cell.score.key], cache, threads, force,
                                               matched, priority=top + 1)
    for cell in sorted(todo, key=lambda c: -_cost(c)):
        cells[cell.key] = runner.submit(
            run_cell, cell, erm[cell.score.erm.key], scores[cell.score.key], selections[cell.selected.key], cache,
            threads, force, priority=int(1000 * _cost(cell)),
        )
    keys = list(cells)
    return dict(zip(keys, runner.gather([cells[k] for k in keys], on_done)))
