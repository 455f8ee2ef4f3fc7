"""Every registered scorer, looped over SCORERS: shape, finiteness, declared output, kept end, determinism."""

from __future__ import annotations

import pytest
import torch

from dataset_pruning.scoring import (
    SCORERS,
    TraceRecorder,
    score_samples,
    scorer_needs,
    scorer_options,
    scorer_output,
)
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs

# Small settings so the loop stays fast; a scorer missing here runs with its defaults.
FAST = {
    "el2n": {"runs": 2, "epochs": 1},
    "grand": {"runs": 2, "epochs": 1},
    "whole_network_influence": {"projection_dim": 6, "curvature": "gauss_newton", "cg_steps": 30},
    "sgd_influence": {"projection_dim": 4},
    "last_layer_influence": {"hessian": "exact"},
    "dynamic_uncertainty": {"window": 3},
    "tdds": {"window": 3},
    "held_out_choice": {"candidates": ["random", "herding"], "ratio": 0.5,
                        "methods": {"random": {"scorer": "random"}, "herding": {"scorer": "herding"}}},
}


@pytest.fixture(scope="module")
def trained():
    data = blobs(n=48, features=6, classes=3, seed=5)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 6, "depth": 1})
    config = TrainingConfig(epochs=6, batch_size=16, lr=0.05, amp=False, device="cpu")
    model = spec.build(seed=0)
    recorder = TraceRecorder(model, data, config, spec, steps=True, checkpoints=3, dynamics=True, probability_epochs=6)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    fit(model, data, config, progress=False, **recorder.callbacks())
    torch.set_num_threads(before)
    return model.eval(), data, recorder.finish()


def test_registry_lists_the_methods():
    expected = {
        "last_layer_influence", "whole_network_influence", "sgd_influence", "influence_norm", "moso", "random",
        "herding", "forgetting", "grand", "el2n", "dynamic_uncertainty", "tdds",
    }
    assert expected <= set(SCORERS.names())
    with pytest.raises(ValueError, match="known: .*el2n"):
        SCORERS.get("el2m")


@pytest.mark.parametrize("method", SCORERS.names())
def test_every_scorer(method, trained):
    model, data, trace = trained
    common = {"device": "cpu", "progress": False, "seed": 0}
    options = {**{k: v for k, v in common.items() if k in scorer_options(method)}, **FAST.get(method, {})}
    first = score_samples(method, model, data, trace=trace, **options)
    second = score_samples(method, model, data, trace=trace, **options)
    assert first.method == method
    assert first.values.shape[0] == len(data)
    assert torch.isfinite(first.values).all()
    assert torch.equal(first.values, second.values), f"{method} is not deterministic for a fixed seed"
    if scorer_output(method) == "scalar":
        assert first.values.ndim == 1 and first.keep in ("highest", "lowest")
    else:
        assert first.values.ndim == 2 and first.keep is None
    assert first.values.std() > 0, f"{method} gives the same score to every sample"


@pytest.mark.parametrize("method", [m for m in SCORERS.names() if scorer_needs(m)])
def test_trace_methods_say_what_to_record(method, trained):
    model, data, _ = trained
    with pytest.raises(ValueError, match="trace"):
        score_samples(method, model, data, trace=None)


def test_unknown_options_list_the_accepted_ones(trained):
    model, data, _ = trained
    with pytest.raises(ValueError, match="takes: runs, epochs"):
        score_samples("el2n", model, data, run=3)


def test_runner_arguments_are_not_options(trained):
    """``trace`` and ``mapper`` come from whoever runs a scorer (base.RUNNER_ARGUMENTS): never listed or accepted
    as options, so a parameter file cannot set moso's mapper."""
    model, data, _ = trained
    assert "mapper" not in scorer_options("moso") and "trace" not in scorer_options("moso")
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['mapper'\]"):
        score_samples("moso", model, data, mapper=list)
