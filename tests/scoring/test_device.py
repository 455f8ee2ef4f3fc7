"""The same scorers on CUDA as on the CPU (skipped without a GPU): every method in SCORERS, and trace recording."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset_pruning.scoring import SCORERS, TraceRecorder, score_samples, scorer_options
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs
from .test_registry import FAST

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def traced():
    data = blobs(n=64, features=6, classes=3, seed=5)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 6, "depth": 1})
    config = TrainingConfig(epochs=6, batch_size=16, lr=0.05, amp=False, device="cpu")
    model = spec.build(seed=0)
    recorder = TraceRecorder(model, data, config, spec, steps=True, checkpoints=3, dynamics=True, probability_epochs=6)
    fit(model, data, config, progress=False, **recorder.callbacks())
    return model.eval(), data, recorder.finish()


@pytest.mark.parametrize("method", SCORERS.names())
def test_cuda_matches_cpu(method, traced):
    model, data, trace = traced
    results = {}
    for device in ("cpu", "cuda"):
        common = {"device": device, "progress": False, "seed": 0}
        options = {**{k: v for k, v in common.items() if k in scorer_options(method)}, **FAST.get(method, {})}
        results[device] = score_samples(method, model, data, trace=trace, **options).values
    assert results["cuda"].device.type == "cpu", "scores come back on the CPU"
    cpu, gpu = results["cpu"].double().flatten().numpy(), results["cuda"].double().flatten().numpy()
    if np.array_equal(cpu, gpu):
        return
    r = np.corrcoef(cpu, gpu)[0, 1]
    assert r > 0.99, f"{method}: CUDA and CPU scores correlate at only {r:.4f}"


def test_trace_recording_on_cuda():
    data = blobs(n=64, features=6, classes=3, seed=6)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 6, "depth": 1})
    config = TrainingConfig(epochs=3, batch_size=16, lr=0.05, device="cuda")  # amp on, as the default recipe
    model = spec.build(seed=0)
    recorder = TraceRecorder(model, data, config, spec, steps=True, checkpoints=2, dynamics=True)
    fit(model, data, config, progress=False, **recorder.callbacks())
    trace = recorder.finish()
    assert trace.recorded == ("steps", "checkpoints", "dynamics")
    assert trace.step_parameters.device.type == "cpu" and torch.isfinite(trace.step_parameters).all()
    assert torch.isfinite(trace.true_probability).all() and trace.correct.any()
    scores = score_samples("sgd_influence", model, data, trace=trace, projection_dim=4, device="cuda", progress=False)
    assert torch.isfinite(scores.values).all()
