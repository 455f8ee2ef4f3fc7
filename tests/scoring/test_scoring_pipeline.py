"""The erm_training + influence_scoring pipelines on an in-memory catalog: influence_vectors always, sample_scores
for the configured method, training_trace as asked, and parameter checks before anything runs."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from dataset_pruning.config import validate_parameters
from dataset_pruning.pipelines import erm_training, influence_scoring
from dataset_pruning.selection.rules.score_rule import remove_by_score

from .conftest import blobs

ERM = {
    "model": {"name": "mlp", "options": {"hidden": 8, "depth": 1}},
    "training": {"epochs": 4, "batch_size": 16, "device": "cpu", "amp": False},
}


def _run(scoring: dict, trace: dict | None = None):
    data = blobs(n=60)
    erm = {**ERM, "trace": trace or {}}
    validate_parameters({"erm_training": erm, "influence_scoring": scoring})
    catalog = DataCatalog(
        {
            "train_set": MemoryDataset(data),
            "params:erm_training": MemoryDataset(erm),
            "params:influence_scoring": MemoryDataset(scoring),
        }
    )
    out = {}
    for stage in (erm_training, influence_scoring):  # stage by stage: the runner releases consumed memory data
        SequentialRunner().run(stage.create_pipeline(), catalog)
        out.update({name: catalog.load(name) for name in stage.create_pipeline().all_outputs()})
        for name, value in out.items():
            catalog[name] = value
    return data, out


def test_default_method_reuses_the_influence_vectors():
    data, out = _run({"device": "cpu"})
    assert out["influence_vectors"].shape == (len(data), 3 * 9)
    assert out["sample_scores"]["values"] is None and out["sample_scores"]["info"]["same_as"] == "influence_vectors"
    assert out["training_trace"].recorded == ()  # nothing asked, nothing recorded
    assert set(out["erm_model"]) == {"spec", "state_dict"}  # erm_model keeps its format


def test_scalar_method_from_the_trace_feeds_the_score_rule():
    data, out = _run({"method": "forgetting", "device": "cpu"}, trace={"dynamics": True})
    scores = out["sample_scores"]
    assert scores["method"] == "forgetting" and scores["keep"] == "highest"
    assert scores["values"].shape == (len(data),) and np.isfinite(scores["values"]).all()
    removed = remove_by_score(scores["values"], scores["keep"], 0.25)
    assert len(removed) == 15 and scores["values"][removed].max() <= np.delete(scores["values"], removed).min()


def test_vector_method_output():
    data, out = _run({"method": "whole_network_influence", "device": "cpu",
                      "options": {"projection_dim": 5, "curvature": "gauss_newton", "cg_steps": 20}})
    assert out["sample_scores"]["values"].shape == (len(data), 5) and out["sample_scores"]["keep"] is None


@pytest.mark.parametrize(
    "params, message",
    [
        ({"influence_scoring": {"method": "moso"}}, r"erm_training.trace.checkpoints: 10"),
        ({"influence_scoring": {"method": "tdds"}}, r"erm_training.trace.dynamics: true"),
        ({"influence_scoring": {"method": "el2n", "options": {"run": 2}}}, r"takes: runs, epochs"),
        ({"influence_scoring": {"influence": {"hesian": "exact"}}}, r"influence: scoring method .last_layer_influence. takes no.*did you mean .hessian."),
        ({"influence_scoring": {"options": {"damping": 0.1}}}, r"put its options under influence_scoring.influence"),
        ({"erm_training": {"trace": {"checkpoints": 100}}}, r"cannot exceed training.epochs"),
    ],
)
def test_bad_scoring_parameters_are_refused_up_front(params, message):
    with pytest.raises(ValueError, match=message):
        validate_parameters({"erm_training": {}, "influence_scoring": {}, **params})
