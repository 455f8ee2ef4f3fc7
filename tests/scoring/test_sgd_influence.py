"""SGD-Influence against its ground truth: the counterfactual SGD run with the sample left out of its minibatches.

A logistic regression is trained by ``fit`` (PyTorch SGD with momentum and weight decay) while ``TraceRecorder``
records every step. The test replays the recorded steps independently (float64), once as recorded (must reproduce
the final parameters: the trace is complete) and once per left-out sample, and compares the actual final
parameter change with S_i.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dataset_pruning.scoring import TraceRecorder, score_samples
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs


def _record(momentum: float):
    data = blobs(n=40, features=4, classes=3, seed=2, spread=1.0)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"depth": 0})
    config = TrainingConfig(
        epochs=4, batch_size=8, lr=0.1, momentum=momentum, weight_decay=1e-2, schedule="cosine", amp=False,
        device="cpu",
    )
    model = spec.build(seed=0)
    recorder = TraceRecorder(model, data, config, spec, steps=True)
    fit(model, data, config, progress=False, **recorder.callbacks())
    return model, data, recorder.finish()


def _replay(trace, data, left_out: int | None, weight: float = 0.0) -> torch.Tensor:
    """PyTorch SGD (heavy-ball momentum, weight decay in the gradient) over the recorded batches, in float64.

    Sample ``left_out`` enters its minibatches' summed loss with ``weight`` (0: removed); the normalisation stays
    1 / |B_t|, as in the reference's counterfactual runs.
    """
    c, a = data.num_classes, data.x.shape[1]
    x, y = data.x.double(), data.y
    theta = trace.step_parameters[0].double().clone()
    velocity = torch.zeros_like(theta)
    mu, lam = trace.config["momentum"], trace.config["weight_decay"]

    def batch_loss(t, xb, yb, weights):
        logits = xb @ t[: c * a].view(c, a).T + t[c * a :]
        return (weights * F.cross_entropy(logits, yb, reduction="none")).sum() / len(yb)

    for t, (batch, lr) in enumerate(zip(trace.step_batches, trace.step_lrs.tolist())):
        weights = torch.where(batch == left_out, weight, 1.0).double() if left_out is not None else torch.ones(len(batch), dtype=torch.float64)
        g = torch.func.grad(batch_loss)(theta, x[batch], y[batch], weights) + lam * theta
        velocity = g if t == 0 else mu * velocity + g
        theta = theta - lr * velocity
    return theta


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_counterfactual_sgd(momentum):
    model, data, trace = _record(momentum)
    final = _replay(trace, data, None)
    assert torch.allclose(final, trace.step_parameters[-1].double(), atol=1e-5), "the trace does not replay"
    predicted = score_samples(
        "sgd_influence", model, data, trace=trace, projection_dim=None, dtype="float64", device="cpu", progress=False
    ).values.double()
    assert predicted.shape == (len(data), final.numel())
    actual = torch.stack([_replay(trace, data, i) - final for i in range(len(data))])
    r = float(np.corrcoef(predicted.flatten(), actual.flatten())[0, 1])
    assert r >= 0.99, f"momentum {momentum}: Pearson {r:.4f} between SGD-Influence and counterfactual SGD"
    # S_i is the exact derivative of the counterfactual run: down-weighting z_i by a small e moves theta_T by e S_i
    e = 1e-3
    derivative = torch.stack([(_replay(trace, data, i, 1.0 - e) - final) / e for i in range(0, len(data), 4)])
    error = float((predicted[::4] - derivative).norm() / derivative.norm())
    assert error < 1e-2, f"momentum {momentum}: relative error {error:.2e} against the finite difference"
    if momentum > 0:  # the velocity matters: dropping it from the recursion must be visibly wrong
        trace.config = {**trace.config, "momentum": 0.0}
        no_velocity = score_samples(
            "sgd_influence", model, data, trace=trace, projection_dim=None, dtype="float64", device="cpu",
            progress=False,
        ).values.double()
        error_plain = float((no_velocity[::4] - derivative).norm() / derivative.norm())
        assert error_plain > 0.5, f"ignoring momentum should be visibly wrong (relative error {error_plain:.3f})"


def test_projection_and_requirements():
    model, data, trace = _record(0.9)
    full = score_samples(
        "sgd_influence", model, data, trace=trace, projection_dim=None, dtype="float64", device="cpu", progress=False
    ).values.double()
    projected = score_samples(
        "sgd_influence", model, data, trace=trace, projection_dim=5, dtype="float64", device="cpu", progress=False,
        seed=3,
    ).values.double()
    from dataset_pruning.scoring.gradients import gaussian_projection

    r = gaussian_projection(full.shape[1], 5, seed=3, device="cpu", dtype=torch.float64)
    assert torch.allclose(projected, full @ r.T, atol=1e-8)
    trace.step_parameters = None  # a trace without steps: a clear error naming the parameter to set
    with pytest.raises(ValueError, match="erm_training.trace.steps: true"):
        score_samples("sgd_influence", model, data, trace=trace, device="cpu")
