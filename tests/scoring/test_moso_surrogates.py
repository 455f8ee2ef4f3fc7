"""MoSo with the reference's surrogate runs (hrtan/MoSo surrogate_training.py + scoring.py): k fresh models on
disjoint parts of the training set, each part scored at its own run's checkpoints against its own mean gradient."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from dataset_pruning.scoring import TraceRecorder, score_samples
from dataset_pruning.scoring.gradients import reinitialised
from dataset_pruning.scoring.moso import checkpoint_sum
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs

RECIPE = TrainingConfig(epochs=6, batch_size=16, lr=0.05, amp=False, device="cpu")


@pytest.fixture(scope="module")
def setup():
    data = blobs(n=48, classes=3, seed=4)
    model = ModelSpec("mlp", data.input_shape, 3, {"hidden": 6, "depth": 1}).build(seed=0)
    return model, data


def test_one_surrogate_is_a_fresh_run_on_all_samples(setup):
    model, data = setup
    scores = score_samples(
        "moso", model, data, surrogates=1, checkpoints=3, recipe=asdict(RECIPE), form="exact", device="cpu",
        progress=False,
    )
    fresh = reinitialised(model, 0)
    recorder = TraceRecorder(fresh, data, RECIPE, {}, checkpoints=3)
    fit(fresh, data, RECIPE, progress=False, **recorder.callbacks())
    expected, _ = checkpoint_sum(fresh, data, recorder.finish().checkpoints, form="exact", batch_size=256, device="cpu")
    assert torch.allclose(scores.values.double(), expected.float().double(), rtol=1e-5, atol=1e-9)
    assert scores.info["surrogates"] == 1 and scores.info["checkpoints"] == 3


def test_parts_are_disjoint_and_the_answer_is_seeded(setup):
    model, data = setup
    options = {"surrogates": 3, "checkpoints": 2, "recipe": asdict(RECIPE), "device": "cpu", "progress": False}
    first = score_samples("moso", model, data, seed=1, **options)
    again = score_samples("moso", model, data, seed=1, **options)
    other = score_samples("moso", model, data, seed=2, **options)
    assert torch.equal(first.values, again.values) and not torch.equal(first.values, other.values)
    assert torch.isfinite(first.values).all() and (first.values != 0).all()  # every sample scored once
    assert first.keep == "highest"


def test_surrogate_options_are_checked(setup):
    model, data = setup
    recipe = asdict(RECIPE)
    with pytest.raises(ValueError, match="surrogates must lie in"):
        score_samples("moso", model, data, surrogates=40, recipe=recipe, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"checkpoints must lie in \[1, 6\]"):
        score_samples("moso", model, data, surrogates=2, checkpoints=7, recipe=recipe, device="cpu", progress=False)
    with pytest.raises(ValueError, match="unknown form"):
        score_samples("moso", model, data, surrogates=2, form="second", recipe=recipe, device="cpu", progress=False)
