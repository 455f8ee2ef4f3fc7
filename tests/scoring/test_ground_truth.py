"""Ground truth on an L2-regularised (multinomial) logistic regression, where influence is exact to first order.

Retraining is Newton's method to machine precision on the objective in its sum form,
sum_{j kept} l_j / n + (reg / 2) ||theta||^2 (sklearn's C convention: removing z_i drops its term), so the actual
parameter change of a removal is known exactly and compared with the predicted S_i (single removals) and
sum of S_i (random groups).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dataset_pruning.scoring import score_samples
from dataset_pruning.scoring.gradients import gaussian_projection
from dataset_pruning.training import ModelSpec

from .conftest import blobs

REG = 1e-2


def _objective(theta, x, y, n, c, a):
    w, b = theta[: c * a].view(c, a), theta[c * a :]
    return F.cross_entropy(x @ w.T + b, y, reduction="sum") / n + 0.5 * REG * theta @ theta


def _minimise(x, y, n, c, a, theta):
    for _ in range(60):  # Newton's method: the problem is strictly convex
        g = torch.func.grad(_objective)(theta, x, y, n, c, a)
        if g.norm() < 1e-13:
            break
        theta = theta - torch.linalg.solve(torch.func.hessian(_objective)(theta, x, y, n, c, a), g)
    return theta


@pytest.fixture(scope="module")
def problem():
    """A logistic-regression model at the exact optimum, and its data (x in float64)."""
    data = blobs(n=200, features=5, classes=3, seed=4, spread=1.0)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"depth": 0})  # Flatten + linear head
    model = spec.build(seed=0).double()
    n, c, a = len(data), data.num_classes, data.x.shape[1]
    x = data.x.double()
    theta = _minimise(x, data.y, n, c, a, torch.zeros(c * (a + 1), dtype=torch.float64))
    with torch.no_grad():
        model.head.weight.copy_(theta[: c * a].view(c, a))
        model.head.bias.copy_(theta[c * a :])
    data.x = x  # keep float64 inputs: the comparison is at machine precision
    return model, data, theta


def _head_layout_to_named(s: torch.Tensor, c: int, a: int) -> torch.Tensor:
    """last_layer_influence orders [W | b] row-major (C, a+1); named_parameters orders W then b."""
    s = s.reshape(len(s), c, a + 1)
    return torch.cat([s[:, :, :a].flatten(1), s[:, :, a]], 1)


def _removal(problem, removed):
    model, data, theta = problem
    n, c, a = len(data), data.num_classes, data.x.shape[1]
    keep = np.setdiff1d(np.arange(n), removed)
    return _minimise(data.x[keep], data.y[keep], n, c, a, theta.clone()) - theta


def _predictions(problem):
    model, data, _ = problem
    c, a = data.num_classes, data.x.shape[1]
    last = score_samples(
        "last_layer_influence", model, data, weight_decay=REG, damping=0.0, device="cpu", progress=False
    ).values.double()
    whole = score_samples(
        "whole_network_influence", model, data, weight_decay=REG, damping=0.0, projection_dim=None, cg_tol=1e-12,
        cg_steps=200, dtype="float64", device="cpu", progress=False,
    ).values.double()
    return {"last_layer_influence": _head_layout_to_named(last, c, a), "whole_network_influence": whole}


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def test_single_removals_match_retraining(problem):
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(problem[1]), size=60, replace=False)
    actual = torch.stack([_removal(problem, [i]) for i in chosen])
    for method, predicted in _predictions(problem).items():
        r = _pearson(predicted[chosen], actual)
        assert r >= 0.99, f"{method}: Pearson {r:.4f} between predicted and retrained single removals"
        r_norm = _pearson(predicted[chosen].norm(dim=1), actual.norm(dim=1))
        assert r_norm >= 0.99, f"{method}: Pearson {r_norm:.4f} of the removal norms"


def test_random_groups_match_retraining(problem):
    rng = np.random.default_rng(1)
    n = len(problem[1])
    groups = [rng.choice(n, size=size, replace=False) for size in rng.integers(5, 40, size=25)]
    actual = torch.stack([_removal(problem, g) for g in groups])
    for method, predicted in _predictions(problem).items():
        summed = torch.stack([predicted[g].sum(0) for g in groups])
        r = _pearson(summed, actual)
        assert r >= 0.9, f"{method}: Pearson {r:.4f} between summed S and retrained group removals"
        r_eps = _pearson(summed.norm(dim=1), actual.norm(dim=1))  # eps = ||sum S_i|| against the actual norm
        assert r_eps >= 0.9, f"{method}: Pearson {r_eps:.4f} between eps and the actual parameter change"


def test_projection_is_the_projected_exact_influence(problem):
    model, data, _ = problem
    k = 7
    exact = _predictions(problem)["whole_network_influence"]
    projected = score_samples(
        "whole_network_influence", model, data, weight_decay=REG, damping=0.0, projection_dim=k, cg_tol=1e-12,
        cg_steps=200, dtype="float64", device="cpu", progress=False, seed=5,
    ).values.double()
    r = gaussian_projection(exact.shape[1], k, seed=5, device="cpu", dtype=torch.float64)
    assert projected.shape == (len(data), k)
    assert torch.allclose(projected, exact @ r.T, rtol=1e-4, atol=1e-6 * exact.abs().max())


def test_cg_on_the_head_equals_the_closed_form_last_layer(tiny_spec, tiny_data):
    """Two independent routes to Eq. 2 on a hidden-layer network's head: closed form and CG on HVPs."""
    model = tiny_spec.build(seed=1)
    c, a = tiny_data.num_classes, model.head.in_features
    last = score_samples(
        "last_layer_influence", model, tiny_data, weight_decay=5e-4, damping=0.01, device="cpu", progress=False
    ).values.double()
    cg = score_samples(
        "whole_network_influence", model, tiny_data, weight_decay=5e-4, damping=0.01, projection_dim=None,
        parameters=["head.weight", "head.bias"], cg_tol=1e-10, dtype="float64", device="cpu", progress=False,
    ).values.double()
    last = _head_layout_to_named(last, c, a)
    assert torch.allclose(cg, last, rtol=1e-3, atol=1e-4 * last.abs().max())


def test_gauss_newton_equals_hessian_for_a_linear_model(problem):
    model, data, _ = problem
    options = {
        "weight_decay": REG, "damping": 0.0, "projection_dim": None, "cg_tol": 1e-12, "cg_steps": 200,
        "dtype": "float64", "device": "cpu", "progress": False,
    }
    hessian = score_samples("whole_network_influence", model, data, curvature="hessian", **options).values
    gauss_newton = score_samples("whole_network_influence", model, data, curvature="gauss_newton", **options).values
    assert torch.allclose(gauss_newton, hessian, rtol=1e-5, atol=1e-7 * hessian.abs().max())


def test_negative_curvature_stops_with_advice(tiny_spec, tiny_data):
    """An untrained network's Hessian is indefinite: with no damping CG must refuse, not return garbage."""
    model = tiny_spec.build(seed=2)
    with torch.no_grad():  # large weights: strong, indefinite curvature in the hidden layer
        for p in model.parameters():
            p.mul_(4.0)
    options = {
        "weight_decay": 0.0, "damping": 0.0, "projection_dim": None, "cg_tol": 1e-10, "cg_steps": 300,
        "dtype": "float64", "device": "cpu", "progress": False,
    }
    with pytest.raises(FloatingPointError, match="raise damping"):
        score_samples("whole_network_influence", model, tiny_data, **options)
    # the Gauss-Newton curvature is positive semi-definite: the same solve goes through with a little damping
    options["damping"] = 1e-3
    scores = score_samples("whole_network_influence", model, tiny_data, curvature="gauss_newton", **options)
    assert torch.isfinite(scores.values).all()
