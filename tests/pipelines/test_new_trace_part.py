"""A new scorer that reads a new part of the training trace is one module (issue 25): the module registers the
part with its recorder and the scorer with its options; nothing else is edited, and the parameter validation, the
`prune` pipeline and the sweep accept it."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from dataset_pruning.config import validate_parameters
from dataset_pruning.runtime import limit_threads
from dataset_pruning.scoring import SCORERS
from dataset_pruning.training_trace import TRACE_PARTS

from kedro_runs import latest, run  # noqa: E402

pytestmark = pytest.mark.slow

TOY = '''
"""Mean training loss of each sample over the last epochs, read from a new trace part, `losses`."""
import torch
import torch.nn.functional as F

from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.training_trace import require_trace, trace_part


class LossRecorder:
    """(E, n) training-pass cross-entropy of every sample."""

    def __init__(self, model, data, config):
        self.y, self.steps_per_epoch = data.y, -(-len(data) // config.batch_size)
        self.losses = torch.zeros(config.epochs, len(data))

    def on_batch_output(self, step, batch, logits):
        batch = batch.cpu()
        self.losses[step // self.steps_per_epoch, batch] = F.cross_entropy(
            logits.float().cpu(), self.y[batch], reduction="none")

    def finish(self):
        return self.losses


trace_part("losses", recorder=LossRecorder)


@scorer("toy_mean_loss", output="scalar", needs=("losses",))
def toy_mean_loss(model, train, *, trace=None, last: int = 2):
    losses = require_trace(trace, "losses", "toy_mean_loss").extra["losses"]
    return SampleScores(losses[-last:].mean(0), method="toy_mean_loss", keep="highest")
'''

SMALL = {
    "ingest": {"options": {"num_samples": 600}},
    "erm_training": {"model": {"name": "mlp"}, "training": {"epochs": 3, "seed": 0}, "trace": {"parts": ["losses"]}},
    "influence_scoring": {"method": "toy_mean_loss", "options": {"last": 2}},
    "optimization_selection": {"ratio": 0.3, "seed": 0, "bound_iterations": 0},
}


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """The toy module importable as ``toy_losses``; the registries restored afterwards."""
    saved = {registry: (dict(registry._entries), dict(registry._meta)) for registry in (SCORERS, TRACE_PARTS)}
    (tmp_path / "toy_losses.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("toy_losses")
    for registry, (entries, meta) in saved.items():
        registry._entries, registry._meta = entries, meta
    sys.modules.pop("toy_losses", None)


def test_validation_accepts_the_toy_scorer_and_explains_what_it_needs(toy_module):
    validate_parameters(SMALL)
    without_part = {**SMALL, "erm_training": {**SMALL["erm_training"], "trace": {}}}
    with pytest.raises(ValueError, match=r"reads the training trace's 'losses'; set erm_training.trace.parts: \[\"losses\"\]"):
        validate_parameters(without_part)
    misspelt = {**SMALL, "influence_scoring": {"method": "toy_mean_loss", "options": {"lst": 2}}}
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['lst'\].*did you mean 'last'"):
        validate_parameters(misspelt)
    with pytest.raises(ValueError, match=r"'dynamics' is recorded by its own setting \(erm_training.trace.dynamics: true\)"):
        validate_parameters({**SMALL, "erm_training": {"trace": {"parts": ["dynamics"]}}})
    with pytest.raises(ValueError, match="unknown trace part 'loses'"):
        validate_parameters({**SMALL, "erm_training": {"trace": {"parts": ["loses"]}}})


def test_the_pipeline_and_a_one_cell_sweep_run_the_toy_scorer(toy_module, kedro_project):
    with limit_threads(1):  # the sweep's tasks run on one torch and one BLAS thread (sweep.torch_threads)
        run(kedro_project, SMALL)
    one_cell = {"methods": ["toy"], "ratios": [0.3], "seeds": [0], "budgets": ["epochs"]}
    sweep = {"preset": "one", "presets": {"one": one_cell},
             "methods": {"toy": {"scorer": "toy_mean_loss", "options": {"last": 2}}},
             "executor": "serial", "torch_threads": 1, "cache": str(kedro_project / "cache")}
    # the pipeline's own scorer and trace left at their defaults: the sweep records what its methods need
    plain = {"ingest": SMALL["ingest"], "erm_training": {**SMALL["erm_training"], "trace": {}},
             "optimization_selection": SMALL["optimization_selection"], "sweep": sweep}
    run(kedro_project, plain, pipeline="sweep")

    data = kedro_project / "data"
    removed = json.loads(latest(data / "07_model_output" / "removed_indices.json").read_text())
    [key] = pd.read_csv(latest(data / "08_reporting" / "sweep_results.csv"))["cell_key"]
    n = json.loads(latest(data / "08_reporting" / "pruning_metrics.json").read_text())["n"]
    assert len(removed) == round(0.3 * n)
    assert np.load(kedro_project / "cache" / "cells" / key / "removed.npy").tolist() == removed
