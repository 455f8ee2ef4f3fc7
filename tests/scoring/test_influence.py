"""Last-layer influence (Eq. 2) against a direct computation: explicit autograd Hessian inverse times an explicit
per-sample gradient, and LiSSA against the exact solve at the same effective damping."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dataset_pruning.scoring import score_samples
from dataset_pruning.training import TrainingConfig, fit

from .conftest import blobs


def _trained(spec, data, epochs=30):
    model = spec.build(seed=0)
    fit(model, data, TrainingConfig(epochs=epochs, batch_size=16, lr=0.05, device="cpu"), progress=False)
    return model.eval()


def _direct_head_influence(model, data, reg: float) -> torch.Tensor:
    """S_i = (1/n) (hess of the mean loss + reg I)^-1 grad l_i, all by autograd, one sample at a time.

    theta is [W | b] flattened row-major, shape (C (a+1),), the layout last_layer_influence documents.
    """
    with torch.no_grad():
        h = model.features(data.x).double()
    c, a = model.head.weight.shape
    theta0 = torch.cat([model.head.weight.detach().double(), model.head.bias.detach().double()[:, None]], 1).flatten()

    def loss(theta, hh, yy):
        t = theta.reshape(c, a + 1)
        return F.cross_entropy(hh @ t[:, :a].T + t[:, a], yy)

    hessian = torch.autograd.functional.hessian(lambda t: loss(t, h, data.y), theta0)
    hessian = hessian + reg * torch.eye(len(theta0), dtype=torch.float64)
    inverse = torch.linalg.inv(hessian)
    rows = []
    for i in range(len(data)):  # explicit per-sample gradients: the reference, so a loop is the point
        theta = theta0.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(theta, h[i : i + 1], data.y[i : i + 1]), theta)
        rows.append(inverse @ g / len(data))
    return torch.stack(rows)


def test_exact_matches_explicit_hessian_inverse(tiny_spec, tiny_data):
    model = _trained(tiny_spec, tiny_data)
    weight_decay, damping = 5e-4, 1e-3
    scores = score_samples(
        "last_layer_influence", model, tiny_data, hessian="exact", weight_decay=weight_decay, damping=damping,
        device="cpu", progress=False,
    )
    direct = _direct_head_influence(model, tiny_data, weight_decay + damping)
    assert scores.values.shape == direct.shape == (len(tiny_data), 3 * 9)
    assert scores.values.dtype == torch.float32
    scale = direct.abs().max()
    assert torch.allclose(scores.values.double(), direct, atol=1e-5 * scale, rtol=1e-4)


def test_sign_is_the_parameter_change_of_removal(tiny_spec, tiny_data):
    """Removing z_i moves the minimiser by +S_i (not -S_i): check against a Newton re-solve without z_i.

    The objective is written in its sum form, sum_j l_j / n + (reg / 2) ||theta||^2 (sklearn's C convention), so
    removing z_i drops one term and keeps the others' weights: the removal that S_i = (1/n) H^-1 grad l_i models.
    """
    model = _trained(tiny_spec, tiny_data, epochs=60)
    reg = 1e-2
    with torch.no_grad():
        h = model.features(tiny_data.x).double()
    c, a = model.head.weight.shape
    n = len(tiny_data)

    def objective(theta, keep):
        t = theta.reshape(c, a + 1)
        logits = h[keep] @ t[:, :a].T + t[:, a]
        return F.cross_entropy(logits, tiny_data.y[keep], reduction="sum") / n + 0.5 * reg * theta @ theta

    def minimise(keep, theta):
        for _ in range(50):  # Newton's method on a strictly convex problem
            g = torch.func.grad(objective)(theta, keep)
            theta = theta - torch.linalg.solve(torch.func.hessian(objective)(theta, keep), g)
            if g.norm() < 1e-13:
                break
        return theta

    full = minimise(torch.arange(n), torch.zeros(c * (a + 1), dtype=torch.float64))
    with torch.no_grad():  # put the head at the exact regularised optimum
        t = full.reshape(c, a + 1)
        model.head.weight.copy_(t[:, :a])
        model.head.bias.copy_(t[:, a])
    scores = score_samples(
        "last_layer_influence", model, tiny_data, weight_decay=reg, damping=0.0, device="cpu", progress=False
    ).values.double()
    for i in (0, 7, 31):
        keep = torch.tensor([j for j in range(n) if j != i])
        actual = minimise(keep, full.clone()) - full
        cosine = F.cosine_similarity(actual, scores[i], dim=0)
        assert cosine > 0.99, f"sample {i}: predicted and actual removal effect point apart (cos {cosine:.3f})"


def test_lissa_matches_exact_at_matching_effective_damping():
    """LiSSA's fixed point is (H + reg + scale * damping)^-1 v: compare with exact at damping = scale * damping."""
    data = blobs(n=48, features=4, classes=3, seed=1)
    from dataset_pruning.training import ModelSpec

    model = _trained(ModelSpec("mlp", data.input_shape, 3, {"hidden": 5, "depth": 1}), data)
    lissa_damping, scale = 0.02, 10.0
    exact = score_samples(
        "last_layer_influence", model, data, hessian="exact", weight_decay=5e-4, damping=scale * lissa_damping,
        device="cpu", progress=False,
    ).values
    lissa = score_samples(
        "last_layer_influence", model, data, hessian="lissa", weight_decay=5e-4, device="cpu", progress=False,
        seed=3, lissa={"damping": lissa_damping, "scale": scale, "steps": 300, "repeats": 3, "batch_size": 256},
    ).values
    relative = (lissa - exact).norm() / exact.norm()
    assert relative < 0.03, f"LiSSA is {relative:.3%} away from the exact solve"
    wrong = score_samples(  # the same comparison at a mismatched damping must fail: the test can tell them apart
        "last_layer_influence", model, data, hessian="exact", weight_decay=5e-4, damping=lissa_damping,
        device="cpu", progress=False,
    ).values
    assert (lissa - wrong).norm() / wrong.norm() > 3 * relative


def test_write_influence_streams_the_scorers_s_to_a_npy(tiny_spec, tiny_data, tmp_path):
    """The pipeline's influence_vectors (``write_influence``: rows written batch by batch, then memory-mapped) are
    the scorer's S to the bit, exact and projected; the catalog stores that file by copying it."""
    import numpy as np

    from dataset_pruning.scoring.last_layer import write_influence
    from dataset_pruning.tensor_files import save_array

    model = _trained(tiny_spec, tiny_data, epochs=5)
    for options in ({"batch_size": 7}, {"hessian": "ekfac", "projection_dim": 6, "batch_size": 7}):
        options = {**options, "device": "cpu", "progress": False}
        s = score_samples("last_layer_influence", model, tiny_data, **options).values.numpy()
        streamed = write_influence(tmp_path / "S.npy", model, tiny_data, **options)
        assert isinstance(streamed, np.memmap) and streamed.dtype == np.float32
        assert np.array_equal(streamed, s)
        save_array(streamed, tmp_path / "stored.npy")
        assert (tmp_path / "stored.npy").read_bytes() == (tmp_path / "S.npy").read_bytes()
        del streamed
