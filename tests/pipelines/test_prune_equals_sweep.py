"""One implementation of the steps (issue 25): `kedro run --pipeline=prune` and a one-cell sweep with the same
parameters run the same library functions (``dataset_pruning.steps``), so they remove the same samples and
measure the same figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dataset_pruning.runtime import limit_threads

from kedro_runs import latest, run  # noqa: E402

pytestmark = pytest.mark.slow

SAME = {
    "ingest": {"options": {"num_samples": 600}},
    "erm_training": {"model": {"name": "mlp"}, "training": {"epochs": 3, "seed": 0}},
    # the sweep sets the selection's seed to the cell's and computes no relaxation bound: so does this prune run
    "optimization_selection": {"ratio": 0.3, "seed": 0, "bound_iterations": 0},
}
FIGURES = ("eps", "eps_over_n", "m_over_n2", "full_test_loss", "full_test_accuracy", "pruned_test_loss",
           "pruned_test_accuracy", "generalization_gap")


def test_a_prune_run_and_a_one_cell_sweep_remove_the_same_samples_and_measure_the_same(kedro_project):
    with limit_threads(1):  # the sweep's tasks run on one torch and one BLAS thread (sweep.torch_threads)
        run(kedro_project, SAME)
    one_cell = {"methods": ["eq4"], "ratios": [0.3], "seeds": [0], "budgets": ["epochs"]}
    sweep = {"preset": "one", "presets": {"one": one_cell}, "methods": {"eq4": {"scorer": "last_layer_influence"}},
             "executor": "serial", "torch_threads": 1, "cache": str(kedro_project / "cache")}
    run(kedro_project, {**SAME, "sweep": sweep}, pipeline="sweep")

    data = kedro_project / "data"
    removed = json.loads(latest(data / "07_model_output" / "removed_indices.json").read_text())
    metrics = json.loads(latest(data / "08_reporting" / "pruning_metrics.json").read_text())
    [key] = pd.read_csv(latest(data / "08_reporting" / "sweep_results.csv"))["cell_key"]
    cell = kedro_project / "cache" / "cells" / key
    row = json.loads((cell / "result.json").read_text())

    assert np.load(cell / "removed.npy").tolist() == removed
    assert row["n"] == metrics["n"] and row["removed"] == metrics["removed"] == len(removed) == round(0.3 * row["n"])
    assert row["ratio_removed"] == metrics["ratio"]
    assert {name: row[name] for name in FIGURES} == {name: metrics[name] for name in FIGURES}
