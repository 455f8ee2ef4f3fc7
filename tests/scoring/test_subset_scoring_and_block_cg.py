"""Subset scoring against the full data's curvature (``indices``) equals the full scoring restricted to the
subset; block CG equals a dense solve of the damped Hessian on a small model, in fewer operator calls than one
CG per right-hand side."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import hessian

from dataset_pruning.scoring import TraceRecorder, score_samples
from dataset_pruning.scoring.gradients import FunctionalModel, cross_entropy, mean_hvp, per_sample_gradients
from dataset_pruning.scoring.whole_network import block_conjugate_gradient, conjugate_gradient
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs

SUBSET = torch.tensor([41, 3, 17, 0, 58, 22, 9])  # unsorted on purpose: rows come back in this order


@pytest.fixture(scope="module")
def trained():
    data = blobs(n=60, features=5, classes=3, seed=3)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 6, "depth": 1})
    config = TrainingConfig(epochs=8, batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-4, amp=False, device="cpu")
    model = spec.build(seed=0)
    recorder = TraceRecorder(model, data, config, spec, steps=True)
    fit(model, data, config, progress=False, **recorder.callbacks())
    return model.eval(), data, recorder.finish()


def _dense_system(model, data, reg):
    fm = FunctionalModel(model, device="cpu", dtype="float64")
    x, y = fm.to_device(data, slice(None))
    h = hessian(lambda t: fm.mean_loss(t, x, y))(fm.theta)
    return fm, h + reg * torch.eye(fm.num_parameters, dtype=torch.float64)


COMMON = {"device": "cpu", "progress": False, "dtype": "float64"}


@pytest.mark.parametrize("projection_dim", [None, 8])
def test_whole_network_subset_equals_full_rows(trained, projection_dim):
    model, data, _ = trained
    options = {**COMMON, "projection_dim": projection_dim, "damping": 0.05, "curvature": "gauss_newton",
               "cg_tol": 1e-12, "cg_steps": 200, "seed": 4}
    full = score_samples("whole_network_influence", model, data, **options).values
    part = score_samples("whole_network_influence", model, data, indices=SUBSET, **options)
    assert part.values.shape == (len(SUBSET), full.shape[1]) and part.info["scored_samples"] == len(SUBSET)
    # P = 57 > 7 scored samples: without a projection the subset solves its own gradients, the full run A^-1
    assert torch.allclose(part.values, full[SUBSET], rtol=1e-5, atol=1e-9 * float(full.abs().max()))
    # the curvature really is the full data's: the subset scored as its own training set differs
    alone = score_samples("whole_network_influence", model, data.subset(SUBSET), **options).values
    assert not torch.allclose(alone, full[SUBSET], rtol=1e-2)


def test_sgd_influence_subset_equals_full_rows(trained):
    model, data, trace = trained
    options = {"device": "cpu", "progress": False, "dtype": "float64", "projection_dim": 5, "seed": 1}
    full = score_samples("sgd_influence", model, data, trace=trace, **options).values
    part = score_samples("sgd_influence", model, data, trace=trace, indices=SUBSET, **options).values
    assert part.shape == (len(SUBSET), 5)
    assert torch.allclose(part, full[SUBSET], rtol=1e-8, atol=1e-12)
    assert full[SUBSET].abs().max() > 0


def test_last_layer_subset_equals_full_rows(trained):
    model, data, _ = trained
    full = score_samples("last_layer_influence", model, data, device="cpu", progress=False).values
    part = score_samples("last_layer_influence", model, data, indices=SUBSET, device="cpu", progress=False).values
    assert torch.allclose(part, full[SUBSET], rtol=1e-5, atol=1e-9)
    norms = score_samples("influence_norm", model, data, indices=SUBSET, device="cpu", progress=False).values
    assert torch.allclose(norms, full[SUBSET].double().norm(dim=1).float(), rtol=1e-5)


def test_influence_norm_is_the_row_norm_of_s_bit_for_bit(trained):
    """One computation behind both scorers (influence.last_layer_scorer): the norms equal row_norms of S exactly,
    whole and on a subset."""
    from dataset_pruning.scoring.influence_norm import row_norms

    model, data, _ = trained
    for indices in (None, SUBSET):
        options = {"indices": indices, "device": "cpu", "progress": False, "batch_size": 16}
        s = score_samples("last_layer_influence", model, data, **options).values
        norms = score_samples("influence_norm", model, data, **options)
        assert torch.equal(norms.values, row_norms(s)) and norms.keep == "highest"


@pytest.mark.parametrize("bad, message", [([0, 0], "repeated"), ([60], r"\[0, 59\]"), ([], "empty")])
def test_bad_indices_are_refused(trained, bad, message):
    model, data, _ = trained
    with pytest.raises(ValueError, match=message):
        score_samples("whole_network_influence", model, data, indices=torch.tensor(bad, dtype=torch.long), **COMMON)


def test_mean_hvp_over_batches_and_vector_chunks_equals_the_dense_hessian(trained):
    """Reverse-over-reverse products, averaged over uneven sample batches (60 = 16 + 16 + 16 + 12) and taken over
    uneven chunks of vectors (12 = 5 + 5 + 2), against the Hessian formed by torch.func.hessian."""
    model, data, _ = trained
    fm, dense = _dense_system(model, data, 0.0)
    vectors = torch.randn(12, fm.num_parameters, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    products = mean_hvp(fm, data, vectors, batch_size=16, vector_chunk=5)
    assert torch.allclose(products, vectors @ dense, rtol=1e-10, atol=1e-12 * float(dense.abs().max()))


@pytest.mark.parametrize("curvature", ["hessian", "gauss_newton"])
def test_block_cg_equals_a_dense_solve(trained, curvature):
    model, data, _ = trained
    reg = {"hessian": 1.0, "gauss_newton": 0.05}[curvature]  # this model's Hessian has eigenvalues down to -0.5
    fm, dense = _dense_system(model, data, reg)
    if curvature == "gauss_newton":  # the Gauss-Newton matrix, formed column by column through its product
        eye = torch.eye(fm.num_parameters, dtype=torch.float64)
        dense = mean_hvp(fm, data, eye, curvature="gauss_newton") + reg * eye
    assert torch.linalg.eigvalsh(dense).min() > 0  # the system is positive definite at this damping
    rhs = torch.randn(12, fm.num_parameters, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = torch.linalg.solve(dense, rhs.T).T

    def operator(v):
        return mean_hvp(fm, data, v, curvature=curvature) + reg * v

    solved, info = block_conjugate_gradient(operator, rhs, steps=200, tol=1e-11)
    assert torch.allclose(solved, exact, rtol=1e-7, atol=1e-9 * float(exact.abs().max()))
    assert info["cg_max_relative_residual"] <= 1e-11
    single, single_info = conjugate_gradient(operator, rhs, steps=500, tol=1e-11)
    assert torch.allclose(single, exact, rtol=1e-6, atol=1e-8 * float(exact.abs().max()))
    # the shared Krylov space: fewer iterations and fewer operator vectors than 12 CGs side by side
    assert info["cg_iterations"] < single_info["cg_iterations"]
    assert info["cg_operator_vectors"] < single_info["cg_operator_vectors"]


def test_whole_network_block_cg_equals_dense_influence(trained):
    """The scorer itself (no projection, P < n: one block with the identity) against G A^-1 / n formed densely."""
    model, data, _ = trained
    damping, weight_decay = 1.0, 5e-4  # above the Hessian's most negative eigenvalue (-0.5)
    fm, dense = _dense_system(model, data, damping + weight_decay)
    gradients = per_sample_gradients(fm, data)
    expected = torch.linalg.solve(dense, gradients.T).T / len(data)
    scores = score_samples(
        "whole_network_influence", model, data, projection_dim=None, damping=damping, weight_decay=weight_decay,
        cg_tol=1e-12, **COMMON,
    )
    assert scores.info["cg_method"] == "block" and scores.info["cg_iterations"] <= 2
    assert torch.allclose(scores.values.double(), expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def test_block_cg_refuses_negative_curvature(trained):
    model, data, _ = trained
    fm = FunctionalModel(model, device="cpu", dtype="float64")
    rhs = torch.randn(3, fm.num_parameters, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with pytest.raises(FloatingPointError, match="raise damping"):  # -I is negative definite
        block_conjugate_gradient(lambda v: -v, rhs, steps=10, tol=1e-8)


def test_cross_entropy_equals_torch_and_keeps_float32_gradients_of_well_fit_samples(trained):
    """The scorers' loss is F.cross_entropy in value and gradient; on samples with 1 - p_y far below float32's
    resolution its float32 per-sample gradients still match float64 (F.cross_entropy's cancel to 0 there)."""
    logits = torch.randn(32, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 5
    labels = torch.randint(0, 4, (32,), generator=torch.Generator().manual_seed(3))
    ours = torch.func.grad(lambda z: cross_entropy(z, labels))(logits)
    torch_ = torch.func.grad(lambda z: torch.nn.functional.cross_entropy(z, labels))(logits)
    assert torch.allclose(cross_entropy(logits, labels), torch.nn.functional.cross_entropy(logits, labels))
    assert torch.allclose(ours, torch_)
    model, data, _ = trained
    confident = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in confident.head.parameters():
            parameter.mul_(12.0)  # the same predictions, 1 - p_y < 6e-8 on many (not below float32 range)
        p = torch.softmax(confident(data.x).double(), 1).gather(1, data.y[:, None])
    assert float((1 - p < 6e-8).double().mean()) > 0.25
    g32 = per_sample_gradients(FunctionalModel(confident, device="cpu"), data).double()
    g64 = per_sample_gradients(FunctionalModel(confident, device="cpu", dtype="float64"), data)
    error = (g32 - g64).norm(dim=1) / g64.norm(dim=1)
    assert float(error.max()) < 1e-3
