"""One property per scalar scoring method, each checked against an independent computation on a small case."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from dataset_pruning.scoring import TraceRecorder, TrainingTrace, score_samples
from dataset_pruning.scoring.gradients import reinitialised
from dataset_pruning.scoring.herding import herding_order, kernel_herding_order
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs

RECIPE = TrainingConfig(epochs=10, batch_size=16, lr=0.05, amp=False, device="cpu")


def _trace(**parts) -> TrainingTrace:
    """A hand-built trace: only the parts a test sets."""
    n = parts.pop("n_samples")
    return TrainingTrace(spec={}, config={}, n_samples=n, step_lrs=torch.zeros(0, dtype=torch.float64), **parts)


# EL2N and GraNd ("Deep Learning on a Data Diet") ------------------------------------------------------------------


def test_el2n_is_the_error_norm_and_averages_runs(tiny_spec, tiny_data):
    model = tiny_spec.build(seed=0)
    at_init = score_samples("el2n", model, tiny_data, runs=1, epochs=0, seed=3, device="cpu", progress=False)
    fresh = reinitialised(model, 3).eval()
    with torch.no_grad():
        expected = [
            (torch.softmax(fresh(tiny_data.x[i : i + 1]), 1)[0] - F.one_hot(tiny_data.y[i], 3).float()).norm()
            for i in range(len(tiny_data))
        ]
    assert at_init.keep == "highest"
    assert torch.allclose(at_init.values, torch.stack(expected), atol=1e-6)
    # runs are averaged: run k uses seed + k, so two runs from seed 0 are the mean of single runs at seeds 0 and 1
    options = {"epochs": 2, "recipe": RECIPE, "device": "cpu", "progress": False}
    both = score_samples("el2n", model, tiny_data, runs=2, seed=0, **options).values
    one = score_samples("el2n", model, tiny_data, runs=1, seed=0, **options).values
    other = score_samples("el2n", model, tiny_data, runs=1, seed=1, **options).values
    assert torch.allclose(both, (one + other) / 2, atol=1e-6)
    assert both.mean() < at_init.values.mean(), "two epochs of training should lower the mean error norm"


def test_el2n_and_grand_share_their_short_runs_through_a_store(tiny_spec, tiny_data, tmp_path, monkeypatch):
    from dataset_pruning.scoring import early_training

    model = tiny_spec.build(seed=0)
    options = {"runs": 2, "epochs": 2, "recipe": RECIPE, "seed": 0, "device": "cpu", "progress": False}
    alone = {name: score_samples(name, model, tiny_data, **options).values for name in ("el2n", "grand")}
    el2n = score_samples("el2n", model, tiny_data, store=tmp_path, **options).values
    assert len(list(tmp_path.glob("run-*.pt"))) == 2
    monkeypatch.setattr(early_training, "_train_for", lambda *a, **k: pytest.fail("a stored run was retrained"))
    grand = score_samples("grand", model, tiny_data, store=tmp_path, **options)
    assert grand.info["runs_read"] == 2
    assert torch.equal(el2n, alone["el2n"]) and torch.equal(grand.values, alone["grand"])  # the same runs
    # anything that changes a run (here its epochs) is another file, never a stale one
    monkeypatch.undo()
    score_samples("el2n", model, tiny_data, store=tmp_path, **{**options, "epochs": 1})
    assert len(list(tmp_path.glob("run-*.pt"))) == 4


def test_grand_is_the_per_sample_gradient_norm(tiny_spec, tiny_data):
    model = tiny_spec.build(seed=0)
    scores = score_samples("grand", model, tiny_data, runs=1, epochs=0, seed=4, device="cpu", progress=False)
    fresh = reinitialised(model, 4).eval()
    expected = []
    for i in range(len(tiny_data)):  # explicit autograd, one sample at a time: the reference
        loss = F.cross_entropy(fresh(tiny_data.x[i : i + 1]), tiny_data.y[i : i + 1])
        grads = torch.autograd.grad(loss, list(fresh.parameters()))
        expected.append(torch.cat([g.flatten() for g in grads]).norm())
    assert scores.keep == "highest"
    assert torch.allclose(scores.values, torch.stack(expected), rtol=1e-5, atol=1e-7)


# Training dynamics: forgetting, dynamic uncertainty, TDDS ---------------------------------------------------------


def test_forgetting_counts_on_a_hand_built_trace():
    correct = torch.tensor(
        [  # rows: presentations (epochs); columns: samples
            [1, 0, 1, 0, 0, 1],
            [1, 1, 0, 0, 0, 0],
            [1, 0, 1, 0, 1, 1],
            [1, 1, 0, 0, 1, 0],
        ],
        dtype=torch.bool,
    )
    data = blobs(n=6, classes=3)
    scores = score_samples("forgetting", None, data, trace=_trace(n_samples=6, correct=correct))
    # never-learned sample 3 gets the maximum, E = 4 presentations, above any possible count
    assert scores.values.tolist() == [0.0, 1.0, 2.0, 4.0, 0.0, 2.0]
    assert scores.keep == "highest"


def test_recorder_maps_training_outputs_to_sample_indices():
    """With a learning rate of ~0 the model never changes, so every recorded training-pass and clean-view figure
    must equal the initial model's prediction for that very sample: a scrambled index mapping would not."""
    data = blobs(n=50, classes=3, seed=7)
    spec = ModelSpec("mlp", data.input_shape, 3, {"hidden": 4, "depth": 1})
    model = spec.build(seed=0)
    with torch.no_grad():
        p0 = torch.softmax(model.eval()(data.x), 1)
    config = TrainingConfig(epochs=3, batch_size=8, lr=1e-30, momentum=0.0, weight_decay=0.0, amp=False, device="cpu")
    recorder = TraceRecorder(model, data, config, spec, dynamics=True, checkpoints=2, probability_epochs=2)
    fit(model, data, config, progress=False, **recorder.callbacks())
    trace = recorder.finish()
    assert trace.correct.shape == (3, 50) and trace.probabilities.shape == (2, 50, 3)
    assert torch.equal(trace.correct, (p0.argmax(1) == data.y).expand(3, 50))
    assert torch.allclose(trace.true_probability, p0[torch.arange(50), data.y].expand(3, 50), atol=1e-6)
    assert torch.allclose(trace.probabilities.float(), p0.expand(2, 50, 3), atol=1e-3)
    assert [c["epoch"] for c in trace.checkpoints] == [1, 2] and trace.recorded == ("checkpoints", "dynamics")


def test_dynamic_uncertainty_is_the_mean_windowed_std():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(8, 5))
    p[:, 0] = 0.7  # a constant prediction has no uncertainty
    scores = score_samples("dynamic_uncertainty", None, blobs(n=5), trace=_trace(n_samples=5, true_probability=torch.tensor(p)), window=3)
    expected = [np.mean([np.std(p[k : k + 3, i], ddof=1) for k in range(6)]) for i in range(5)]
    assert np.allclose(scores.values.numpy(), expected, atol=1e-6)
    assert scores.values[0] == 0 and scores.keep == "highest"


def test_dual_is_windowed_uncertainty_times_difficulty_over_the_first_epochs():
    # behaapyy/dual-pruning's dual(): per window 10 * std (unbiased) * (1 - mean), averaged over windows, on the first
    # T epochs only; the mean prediction over those epochs is the column rule 'beta' reads.
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(12, 6))
    p[:, 0] = 0.99  # settled and easy: no uncertainty
    trace = _trace(n_samples=6, true_probability=torch.tensor(p))
    scores = score_samples("dual", None, blobs(n=6), trace=trace, epochs=8, window=4)
    expected = [np.mean([10 * np.std(p[k : k + 4, i], ddof=1) * (1 - p[k : k + 4, i].mean()) for k in range(5)])
                for i in range(6)]
    assert np.allclose(scores.values.numpy(), expected, atol=1e-6)
    assert scores.values[0] == 0 and scores.keep == "highest"
    assert np.allclose(scores.columns["mean_probability"].numpy(), p[:8].mean(0), atol=1e-6)
    capped = score_samples("dual", None, blobs(n=6), trace=trace)  # T = 30 > 12 recorded: all 12, J = 10
    assert capped.info == {"epochs": 12, "window": 10}


def _tdds_loops(probs: np.ndarray, window: int, decay: float) -> np.ndarray:
    """The reference's loops (importance_evaluation.py), written out sample by sample."""
    t, n, _ = probs.shape
    out = np.zeros(n)
    for i in range(n):
        for k in range(t - window + 1):
            kd = []
            for j in range(window - 1):
                a, b = probs[k + j, i], probs[k + j + 1, i]
                kd.append(np.abs(b * (np.log(b + 1e-8) - np.log(a + 1e-8))).sum())
            kd = np.array(kd)
            out[i] += np.linalg.norm(kd - kd.mean()) * decay * (1 - decay) ** (t - window - k)
    return out


def test_tdds_follows_the_reference_and_ignores_labels():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(7, 6, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    probs[:, 0] = 0.25  # a sample whose prediction never changes scores 0
    trace = _trace(n_samples=6, probabilities=torch.tensor(probs))
    scores = score_samples("tdds", None, blobs(n=6, classes=4), trace=trace, window=4, decay=0.9)
    assert np.allclose(scores.values.numpy(), _tdds_loops(probs, 4, 0.9), rtol=1e-5)
    assert scores.values[0] == 0 and scores.keep == "highest"
    relabelled = blobs(n=6, classes=4)
    relabelled.y = (relabelled.y + 1) % 4
    assert torch.equal(score_samples("tdds", None, relabelled, trace=trace, window=4).values, scores.values)


# Herding, random, influence norm ---------------------------------------------------------------------------------


def test_herding_order_is_greedy_argmin_mean_matching():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(12, 3))
    mean, chosen = f.mean(0), []
    for t in range(1, 13):  # brute force over candidates
        best = min((j for j in range(12) if j not in chosen), key=lambda j: np.linalg.norm(mean - (f[chosen].sum(0) + f[j]) / t))
        chosen.append(best)
    assert herding_order(torch.tensor(f)).tolist() == chosen
    assert herding_order(torch.tensor(f), max_gram_bytes=0).tolist() == chosen  # the matrix-vector route
    assert chosen[0] == int(np.argmin(np.linalg.norm(f - mean, axis=1))), "the first pick is the closest to the mean"


def test_kernel_herding_is_greedy_and_follows_the_class_distribution():
    """Chen et al.'s greedy rule, checked by brute force, and what it is for: on a class with a 10 % mode far from
    the mean, the first 10 picks hold one sample of it (linear herding, matching the mean, holds none)."""
    rng = np.random.default_rng(3)
    f = rng.normal(size=(12, 3))
    d2 = ((f[:, None] - f[None]) ** 2).sum(-1)
    positive = np.sort(d2[d2 > 0])
    k = np.exp(-d2 / positive[(len(positive) - 1) // 2])  # the lower median, as torch's
    chosen = []
    for t in range(1, 13):
        best = max((j for j in range(12) if j not in chosen), key=lambda j: k[j].mean() - k[j, chosen].sum() / t)
        chosen.append(best)
    assert kernel_herding_order(torch.tensor(f)).tolist() == chosen
    assert kernel_herding_order(torch.tensor(f), max_gram_bytes=0).tolist() == chosen  # one kernel row per pick
    g = torch.Generator().manual_seed(0)
    x = torch.cat([0.3 * torch.randn(180, 2, generator=g), 0.3 * torch.randn(20, 2, generator=g) + torch.tensor([6.0, 0])])
    assert int((kernel_herding_order(x)[:10] >= 180).sum()) == 1
    assert int((herding_order(x)[:10] >= 180).sum()) == 0


def test_herding_scores_rank_within_each_class(tiny_spec, tiny_data):
    scores = score_samples("herding", tiny_spec.build(seed=0), tiny_data, device="cpu")
    for c in range(3):
        members = scores.values[tiny_data.y == c]
        n_c = len(members)
        assert sorted(members.tolist()) == pytest.approx(sorted(1 - k / n_c for k in range(n_c)))
    assert scores.keep == "highest"


def test_random_is_seeded_uniform(tiny_data):
    a = score_samples("random", None, tiny_data, seed=1).values
    assert torch.equal(a, score_samples("random", None, tiny_data, seed=1).values)
    assert not torch.equal(a, score_samples("random", None, tiny_data, seed=2).values)
    assert 0 <= a.min() and a.max() < 1


def test_influence_norm_is_the_norm_of_each_influence_vector(tiny_spec, tiny_data):
    model = tiny_spec.build(seed=0)
    vectors = score_samples("last_layer_influence", model, tiny_data, device="cpu", progress=False).values
    norms = score_samples("influence_norm", model, tiny_data, device="cpu", progress=False)
    assert torch.allclose(norms.values, vectors.norm(dim=1), rtol=1e-5)
    assert norms.keep == "highest"


# MoSo ------------------------------------------------------------------------------------------------------------


def _logistic_at(seed: int):
    data = blobs(n=30, features=4, classes=3, seed=seed, spread=1.0)
    model = ModelSpec("mlp", data.input_shape, 3, {"depth": 0}).build(seed=seed)
    fit(model, data, TrainingConfig(epochs=3, batch_size=10, lr=0.1, amp=False, device="cpu"), progress=False)
    return model.double().eval(), data


def test_moso_matches_exact_leave_one_out_risk_change():
    """At a checkpoint with step size lr, removing z_i from one gradient step (sum / N) changes the risk of the
    other samples by M_i = L_{-i}(theta - lr/N sum_{j != i} g_j) - L_{-i}(theta - lr/N sum_j g_j), computed
    exactly here; MoSo's first-order score predicts lr / (N - 1) * <g_bar - g_i/N, g_i>, in sign and rank."""
    model, data = _logistic_at(0)
    lr = 0.05
    x, y, n = data.x.double(), data.y, len(data)
    theta = torch.cat([model.head.weight.detach().flatten(), model.head.bias.detach()])

    def losses(t):
        return F.cross_entropy(x @ t[:12].view(3, 4).T + t[12:], y, reduction="none")

    per_sample = torch.func.jacrev(losses)(theta)  # (n, P): the per-sample gradients, explicitly
    step = theta - lr * per_sample.mean(0)
    exact = []
    for i in range(n):
        keep = torch.arange(n) != i
        without_i = step + lr / n * per_sample[i]
        exact.append(float(losses(without_i)[keep].mean() - losses(step)[keep].mean()))
    exact = np.array(exact)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    trace = _trace(n_samples=n, checkpoints=[{"epoch": 0, "step": 0, "lr": lr, "state_dict": state}])
    scores = score_samples("moso", model, data, trace=trace, device="cpu", progress=False)
    predicted = scores.values.double().numpy() / (n - 1)
    assert scores.keep == "highest"
    assert spearmanr(predicted, exact).statistic > 0.99
    clear = np.abs(exact) > 0.02 * np.abs(exact).max()
    assert (np.sign(predicted[clear]) == np.sign(exact[clear])).all()
    assert np.allclose(predicted, exact, rtol=0.05, atol=0.02 * np.abs(exact).max())


def test_moso_weights_checkpoints_by_learning_rate_and_exact_form():
    (m1, data), (m2, _) = _logistic_at(1), _logistic_at(2)
    checkpoint = lambda m, lr: {"epoch": 0, "step": 0, "lr": lr, "state_dict": m.state_dict()}  # noqa: E731
    one = score_samples("moso", m1, data, trace=_trace(n_samples=30, checkpoints=[checkpoint(m1, 1.0)]), device="cpu", progress=False).values
    two = score_samples("moso", m1, data, trace=_trace(n_samples=30, checkpoints=[checkpoint(m2, 1.0)]), device="cpu", progress=False).values
    both = score_samples("moso", m1, data, trace=_trace(n_samples=30, checkpoints=[checkpoint(m1, 0.3), checkpoint(m2, 0.05)]), device="cpu", progress=False).values
    assert torch.allclose(both, 0.3 * one + 0.05 * two, rtol=1e-5, atol=1e-9)
    # the reference's exact form, from explicit per-sample gradients
    x, n = data.x.double(), 30
    theta = torch.cat([m1.head.weight.detach().flatten(), m1.head.bias.detach()])
    g = torch.func.jacrev(lambda t: F.cross_entropy(x @ t[:12].view(3, 4).T + t[12:], data.y, reduction="none"))(theta)
    g_bar = g.mean(0)
    expected = ((2 * n - 3) * g_bar @ g_bar - (g * g).sum(1) + (2 * n - 4) * ((g_bar - g / n) * g).sum(1)) / (n - 1) ** 2
    exact_form = score_samples("moso", m1, data, trace=_trace(n_samples=30, checkpoints=[checkpoint(m1, 1.0)]), form="exact", device="cpu", progress=False).values
    assert torch.allclose(exact_form.double(), expected, rtol=1e-4, atol=1e-7)


def test_d2_order_follows_forward_and_reverse_message_passing():
    # three tight pairs: the densest pick first, then its neighbour's density falls below the next pair's
    from dataset_pruning.scoring.d2 import d2_order

    features = np.array([[0.0], [0.1], [5.0], [5.1], [10.0], [10.1]])
    importance = np.array([1.0, 1.0, 0.9, 0.9, 0.2, 0.2])
    order = d2_order(features, importance, n_neighbor=1, gamma=0.1)
    assert sorted(order.tolist()) == list(range(6))
    assert set(order[:2].tolist()) == {0, 2}  # one of each pair before either's neighbour: diversity
    assert set(order[:3].tolist()) == {0, 2, 4}


def test_d2_ranks_within_each_class_and_picks_the_cut_last(tiny_spec, tiny_data):
    model = tiny_spec.build(seed=0)  # any features will do: the test is about the ranks
    n = len(tiny_data)
    correct = torch.from_numpy(np.random.default_rng(0).random((6, n)) < 0.6)
    trace = _trace(n_samples=n, correct=correct)
    scores = score_samples("d2", model, tiny_data, trace=trace, device="cpu")
    assert scores.keep == "highest"
    for c in range(tiny_data.num_classes):  # 1 - rank / n_c within each class: a permutation of the ranks
        values = scores.values[tiny_data.y == c]
        assert sorted(values.tolist()) == pytest.approx(sorted((1 - torch.arange(len(values)) / len(values)).tolist()))
    forgetting = score_samples("forgetting", None, tiny_data, trace=trace).values
    cut = score_samples("d2", model, tiny_data, trace=trace, device="cpu", hard_cut=0.25).values
    for c in range(tiny_data.num_classes):  # the hardest quarter of each class is picked last
        members = (tiny_data.y == c).nonzero().flatten()
        k = int(round(0.25 * len(members)))
        hardest = members[torch.argsort(-forgetting[members], stable=True)[:k]]
        assert cut[hardest].max() < cut[members[~torch.isin(members, hardest)]].min()


@pytest.mark.parametrize("method, rule", [("dual", "score"), ("dual", "beta"), ("d2", "score")])
def test_new_candidates_remove_exactly_the_count_within_class_budgets_for_a_seed(method, rule, tiny_spec, tiny_data):
    from dataset_pruning.selection import class_quotas, select_for_method

    rng = np.random.default_rng(3)
    n = len(tiny_data)
    trace = _trace(n_samples=n, true_probability=torch.from_numpy(rng.uniform(size=(6, n))),
                   correct=torch.from_numpy(rng.random((6, n)) < 0.6))
    options = {"device": "cpu"} if method == "d2" else {}
    scores = score_samples(method, tiny_spec.build(seed=0), tiny_data, trace=trace, **options)
    columns = {name: column.numpy() for name, column in scores.columns.items()}
    labels = tiny_data.y.numpy()
    for ratio in (0.3, 0.7):
        runs = [select_for_method(np.zeros((n, 2)), scores.values.numpy(), scores.keep, labels=labels, ratio=ratio,
                                  rule=rule, class_balanced=True, seed=5, columns=columns)[0] for _ in range(2)]
        assert np.array_equal(*runs) and len(runs[0]) == round(ratio * n)
        assert np.bincount(labels[runs[0]], minlength=tiny_data.num_classes).tolist() == class_quotas(labels, ratio).tolist()
        if rule == "score":  # the kept end: every kept sample scores at least as high as any removed one, per class
            kept = np.setdiff1d(np.arange(n), runs[0])
            for c in range(tiny_data.num_classes):
                k, r = kept[labels[kept] == c], runs[0][labels[runs[0]] == c]
                assert scores.values[k].min() >= scores.values[r].max()
