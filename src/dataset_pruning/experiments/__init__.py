"""Experiments: a sweep over data set x model x method x ratio x seed x retraining budget, run serially or on Dask
(``grid``: the cells and the shared work they need; ``tasks``: ERM, scoring, one cell; ``sweep``: the driver;
``report``: tables and figures from the runs' table)."""

from dataset_pruning.experiments.grid import CellSpec, ErmSpec, ScoreSpec, expand_grid
from dataset_pruning.experiments.sweep import run_sweep

__all__ = ["CellSpec", "ErmSpec", "ScoreSpec", "expand_grid", "run_sweep"]
