"""Score extrapolation: kNN is exact on duplicated points, the GNN recovers a smooth score on a toy manifold,
the option is validated up front and runs through the influence_scoring node (sample_scores, scoring_metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from scipy.stats import spearmanr

from dataset_pruning.config import validate_parameters
from dataset_pruning.pipelines import erm_training, influence_scoring
from dataset_pruning.scoring import score_samples
from dataset_pruning.scoring.extrapolation import (
    ExtrapolationConfig,
    check_extrapolation,
    choose_subset,
    embed,
    extrapolate,
    extrapolate_scores,
    knn_regress,
    loo_knn,
    restrict_trace,
    select_knn,
)

from .conftest import blobs


def _duplicated(seed: int = 0):
    """40 distinct points, each twice (same label); one copy of each is scored."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(40, 8, generator=g)
    labels = torch.arange(40) % 4
    embeddings, labels = torch.cat([base, base]), torch.cat([labels, labels])
    scored = torch.arange(40)  # the first copies; samples 40..79 are their duplicates
    return embeddings, labels, scored, g


@pytest.mark.parametrize("by_class", [True, False])
def test_knn_is_exact_on_duplicated_points(by_class):
    embeddings, labels, scored, g = _duplicated()
    scalar = torch.rand(40, generator=g) * 10
    vectors = torch.randn(40, 6, generator=g)
    config = {"fraction": 0.5, "method": "knn", "k": 5, "weights": "distance", "by_class": by_class}
    for values in (scalar, vectors):
        full, info = extrapolate(embeddings, labels, 4, scored, values, config, seed=0)
        assert full.shape == (80, *values.shape[1:])
        assert torch.equal(full[:40], values)  # scored samples keep their own scores
        assert torch.allclose(full[40:], values, rtol=1e-6, atol=1e-6)  # each duplicate gets its twin's score
        assert info["extrapolated_samples"] == 40 and info["holdout_samples"] == 8
    # with uniform weights the 4 other neighbours count as much as the twin: not exact
    full, _ = extrapolate(embeddings, labels, 4, scored, scalar, {**config, "weights": "uniform"}, seed=0)
    assert not torch.allclose(full[40:], scalar, atol=1e-3)


@pytest.mark.parametrize("by_class", [True, False])
@pytest.mark.parametrize("weights", ["distance", "uniform"])
def test_leave_one_out_knn_equals_refitting_without_each_point(by_class, weights):
    """loo_knn's one distance pass gives, for every point, what knn_regress predicts from the other points (a class
    with a single point falls back to all points, as knn_regress does for a class with none)."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 5, generator=g)
    labels = torch.tensor([0] * 14 + [1] * 15 + [2])
    for values in (torch.rand(30, generator=g), torch.randn(30, 3, generator=g)):
        loo = loo_knn(x, labels, values, k=(1, 4, 40), weights=weights, by_class=by_class)
        for (_, k), predicted in loo.items():
            for i in range(30):
                rest = torch.tensor([j for j in range(30) if j != i])
                expected = knn_regress(x, labels, rest, values[rest], torch.tensor([i]), k=k, weights=weights,
                                       by_class=by_class)
                assert torch.allclose(predicted[i], expected[0], atol=1e-12), (k, i)
        some = torch.tensor([3, 17, 29])  # predicting only some points: the same rows
        for key, predicted in loo_knn(x, labels, values, k=(1, 4, 40), weights=weights, by_class=by_class,
                                      queries=some, chunk=2).items():
            assert torch.allclose(predicted, loo[key][some], atol=1e-12)


def test_selection_picks_the_embedding_that_carries_the_score_without_the_held_out_samples():
    """Of an embedding in which the score is smooth and one of noise, leave-one-out picks the first, and the choice
    is made on the fitted samples only: changing the held-out samples' scores changes neither the choice nor any
    candidate's leave-one-out figure (so holdout_spearman stays an estimate on unseen samples)."""
    embeddings, labels, score, g = _helix(n=400)
    candidates = {"noise": torch.randn(400, 16, generator=g), "helix": embeddings}
    scored = torch.randperm(400, generator=g)[:100].sort().values
    config = {"fraction": 0.25, "k": [3, 10, 30], "by_class": [True, False]}
    full, info = extrapolate(candidates, labels, 2, scored, score[scored], config, seed=0)
    assert info["embedding"] == "helix" and info["k"] in (3, 10, 30) and len(info["selection"]) == 12
    best = max(row["spearman"] for row in info["selection"])
    assert info["loo_spearman"] == best > 0.9
    assert max(r["spearman"] for r in info["selection"] if r["embedding"] == "noise") < best - 0.1  # the label only
    unscored = torch.ones(400, dtype=torch.bool)
    unscored[scored] = False
    assert spearmanr(full[unscored].numpy(), score[unscored].numpy()).statistic > 0.9
    holdout = info["holdout_samples"]
    order = torch.as_tensor(np.random.default_rng(1).permutation(100))  # extrapolate draws them from seed + 1
    changed = score[scored].clone()
    changed[order[:holdout]] *= -1  # the held-out samples' scores reversed
    _, moved = extrapolate(candidates, labels, 2, scored, changed, config, seed=0)
    assert moved["selection"] == info["selection"] and moved["embedding"] == info["embedding"]
    assert moved["holdout_spearman"] < 0 < info["holdout_spearman"]
    # vector scores are chosen by the Spearman of the leave-one-out vectors' norms (as holdout_spearman)
    vectors = torch.stack([score, -score, torch.cos(score)], 1)
    choice, rows = select_knn(candidates, labels, scored, vectors[scored], k=(5,), by_class=(False,), samples=50)
    assert choice["embedding"] == "helix" and set(rows[0]) == {"embedding", "by_class", "k", "spearman"}
    assert choice["spearman"] > 0.9


def test_rank_target_is_robust_to_heavy_tails():
    """Scores spanning orders of magnitude (like influence norms): averaging the values lets a few huge ones
    dominate the neighbours' mean, averaging their ranks does not; both read on the score's own scale."""
    g = torch.Generator().manual_seed(1)
    t = torch.rand(400, generator=g)
    embeddings = torch.stack([t, torch.rand(400, generator=g)], 1)  # the score depends on the first coordinate
    score = torch.exp(12 * t) * torch.exp(2 * torch.randn(400, generator=g))  # log-normal noise, 5 decades
    scored = torch.arange(0, 400, 4)
    unscored = torch.ones(400, dtype=torch.bool)
    unscored[scored] = False
    labels = torch.zeros(400, dtype=torch.long)
    rho = {}
    for target in ("rank", "value"):
        config = {"fraction": 0.25, "method": "knn", "k": 15, "weights": "uniform", "target": target}
        full, info = extrapolate(embeddings, labels, 1, scored, score[scored], config, seed=0)
        rho[target] = spearmanr(full[unscored].numpy(), score[unscored].numpy()).statistic
        assert info["target"] == target
        assert full[unscored].min() >= score[scored].min() * (1 - 1e-6)
        assert full[unscored].max() <= score[scored].max() * (1 + 1e-6)
    assert rho["rank"] > rho["value"] + 0.05, rho


def _helix(n: int = 600, seed: int = 0):
    """A 1-d manifold (a helix) linearly embedded in 16 dimensions with a little noise; the score is a smooth,
    non-monotone function of the position along it."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * 3 * math.pi
    curve = torch.stack([torch.cos(t), torch.sin(t), 0.3 * t], 1)
    embeddings = curve @ torch.randn(3, 16, generator=g) + 0.02 * torch.randn(n, 16, generator=g)
    labels = (t > 1.5 * math.pi).long()
    return embeddings, labels, torch.sin(t) + 0.5 * t, g


def test_gnn_recovers_a_smooth_score_on_a_manifold():
    embeddings, labels, score, g = _helix()
    scored = torch.randperm(len(score), generator=g)[:60].sort().values  # 10%
    config = {"fraction": 0.1, "method": "gnn", "gnn": {"hidden": [128, 64], "epochs": 35}}
    full, info = extrapolate(embeddings, labels, 2, scored, score[scored], config, seed=0, device="cpu")
    unscored = torch.ones(len(score), dtype=torch.bool)
    unscored[scored] = False
    rho = spearmanr(full[unscored].numpy(), score[unscored].numpy()).statistic
    assert rho >= 0.9, f"GNN extrapolation Spearman {rho:.3f} < 0.9"
    assert torch.equal(full[scored], score[scored].float())
    assert info["holdout_spearman"] > 0.8 and 1 <= info["gnn_best_epoch"] <= 35
    # control: the same GNN on embeddings unrelated to the score cannot recover it
    shuffled = embeddings[torch.randperm(len(score), generator=g)]
    full, _ = extrapolate(shuffled, labels, 2, scored, score[scored], config, seed=0, device="cpu")
    assert spearmanr(full[unscored].numpy(), score[unscored].numpy()).statistic < 0.8


def test_choose_subset_is_stratified_and_seeded():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    index = choose_subset(labels, 0.1, stratified=True, seed=3)
    assert torch.equal(torch.bincount(labels[index]), torch.tensor([5, 3, 2]))
    assert torch.equal(index, choose_subset(labels, 0.1, stratified=True, seed=3))
    assert not torch.equal(index, choose_subset(labels, 0.1, stratified=True, seed=4))
    with pytest.raises(ValueError, match="scores every one"):
        choose_subset(torch.tensor([0, 1, 2]), 0.5, stratified=True)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fraction": 0.1, "methd": "knn"}, r"extrapolation: unknown option\(s\) 'methd' \(did you mean 'method'\?\); valid: fraction"),
        ({"fraction": 0.1, "method": "svm"}, r"extrapolation.method must be one of knn, gnn"),
        ({"fraction": 1.5}, r"extrapolation.fraction must be a number in \(0, 1\), or null; got 1.5"),
        ({"fraction": 0.1, "weights": "gauss"}, r"extrapolation.weights must be one of distance, uniform"),
        ({"fraction": 0.1, "gnn": {"hiden": [8]}}, r"extrapolation.gnn: unknown option\(s\) 'hiden'.*valid: hidden"),
        ({"fraction": 0.1, "gnn": {"epochs": 0}}, r"extrapolation.gnn.epochs must be an integer >= 1; got 0"),
        ({"fraction": 0.1, "k": 0}, r"extrapolation.k must be an integer >= 1, or a non-empty list"),
        ({"fraction": 0.1, "k": [5, 0]}, r"extrapolation.k must be an integer >= 1.*got 0"),
        ({"fraction": 0.1, "by_class": []}, r"extrapolation.by_class must be true or false, or a non-empty list"),
        ({"fraction": 0.1, "selection_samples": 2}, r"extrapolation.selection_samples must be an integer >= 3, or null; got 2 \(null: all"),
        ({"fraction": 0.1, "target": "log"}, r"extrapolation.target must be one of rank, value"),
        ({"fraction": 0.1, "embedding": "pixels"}, r"extrapolation.embedding must be one of features, logits, input"),
        ({"fraction": 0.1, "embedding": ["logits", "pixel"]}, r"extrapolation.embedding must be one of .*got 'pixel'"),
        ({"fraction": "0.1"}, r"extrapolation.fraction must be a number in \(0, 1\), or null; got '0.1'"),  # no coercion
        ({"fraction": 0.1, "by_class": 1}, r"extrapolation.by_class must be true or false.*got 1"),
        ({"fraction": 0.1, "gnn": {"hidden": []}}, r"extrapolation.gnn.hidden must be an integer >= 1, or a non-empty"),
        ({"fraction": 0.1, "gnn": 8}, r"extrapolation.gnn must be a mapping of options; got 8"),
    ],
)
def test_bad_extrapolation_options_are_refused_up_front(options, message):
    with pytest.raises(ValueError, match=message):
        check_extrapolation(options)
    with pytest.raises(ValueError, match=r"influence_scoring: " + message):
        validate_parameters({"erm_training": {}, "influence_scoring": {"extrapolation": options}})


def test_the_library_defaults_are_the_pipelines():
    """``ExtrapolationConfig()`` extrapolates as ``influence_scoring.extrapolation`` in conf/base does."""
    from pathlib import Path

    import yaml

    conf = Path(__file__).resolve().parents[2] / "conf/base/parameters_influence_scoring.yml"
    pipeline = yaml.safe_load(conf.read_text())["influence_scoring"]["extrapolation"]
    assert ExtrapolationConfig().as_dict() == pipeline
    assert check_extrapolation(pipeline) == ExtrapolationConfig()


def test_off_by_default():
    assert not check_extrapolation({}).enabled
    assert not check_extrapolation({"fraction": None, "method": "gnn"}).enabled
    validate_parameters({"erm_training": {}, "influence_scoring": {"extrapolation": {"fraction": None}}})


ERM = {
    "model": {"name": "mlp", "options": {"hidden": 8, "depth": 1}},
    "training": {"epochs": 6, "batch_size": 16, "device": "cpu", "amp": False},
}


def _run(scoring: dict, trace: dict | None = None, n: int = 90):
    data = blobs(n=n, seed=2)
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
    for stage in (erm_training, influence_scoring):
        SequentialRunner().run(stage.create_pipeline(), catalog)
        out.update({name: catalog.load(name) for name in stage.create_pipeline().all_outputs()})
        for name, value in out.items():
            catalog[name] = value
    return data, out


@pytest.mark.parametrize("method", ["knn", "gnn"])
def test_extrapolation_runs_through_the_scoring_node(method):
    scoring = {
        "method": "influence_norm", "device": "cpu", "seed": 1,
        "extrapolation": {"fraction": 0.3, "method": method, "gnn": {"hidden": [16], "epochs": 5}},
    }
    data, out = _run(scoring)
    scores, metrics = out["sample_scores"], out["scoring_metrics"]
    assert scores["method"] == "influence_norm" and scores["keep"] == "highest"
    assert scores["values"].shape == (len(data),) and np.isfinite(scores["values"]).all()
    info = scores["info"]["extrapolation"]
    assert info["method"] == method and info["scored_samples"] == 27 and info["extrapolated_samples"] == 63
    assert metrics["extrapolation.fraction"]["value"] == pytest.approx(0.3)
    assert math.isfinite(metrics["extrapolation.holdout_spearman"]["value"])
    assert "extrapolation.method" not in metrics  # strings stay in info (the method is logged as a parameter)
    assert metrics["influence_vectors.effective_damping"]["value"] == pytest.approx(5e-4 + 1e-3)
    # the scored samples keep exactly the scores of a full scoring (influence_norm scores rows against the full data)
    model = _model(out["erm_model"])
    full = score_samples("influence_norm", model, data, device="cpu", progress=False).values.numpy()
    index = choose_subset(data.y, 0.3, stratified=True, seed=1).numpy()
    assert np.allclose(scores["values"][index], full[index], rtol=1e-5)
    assert not np.allclose(np.delete(scores["values"], index), np.delete(full, index), rtol=1e-5)


def _model(saved):
    from dataset_pruning.training import load_model

    return load_model(saved)


def test_extrapolated_scalar_method_from_the_trace():
    """A trace-based scorer sees the trace restricted to the scored samples: its subset scores are the full
    scores at those samples."""
    data, out = _run(
        {"method": "forgetting", "device": "cpu", "extrapolation": {"fraction": 0.5, "method": "knn"}},
        trace={"dynamics": True},
    )
    trace, values = out["training_trace"], out["sample_scores"]["values"]
    index = choose_subset(data.y, 0.5, stratified=True, seed=0)
    full = score_samples("forgetting", None, data, trace=trace).values.numpy()
    assert np.array_equal(values[index.numpy()], full[index.numpy()])
    assert restrict_trace(trace, index).correct.shape == (trace.correct.shape[0], len(index))


def test_vector_scores_are_extrapolated_as_vectors():
    data = blobs(n=60, seed=4)
    from dataset_pruning.training import ModelSpec, TrainingConfig, fit

    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 8, "depth": 1})
    model = spec.build(seed=0)
    fit(model, data, TrainingConfig(epochs=5, batch_size=16, amp=False, device="cpu"), progress=False)
    full = score_samples("last_layer_influence", model, data, device="cpu", progress=False).values
    scores = extrapolate_scores(
        "last_layer_influence", model, data, config={"fraction": 0.5, "k": 3}, options={"device": "cpu",
        "progress": False}, device="cpu",
    )
    assert scores.values.shape == full.shape and scores.keep is None
    info = scores.info["extrapolation"]
    assert info["vector_scores"] and {"holdout_cosine", "holdout_relative_error", "holdout_spearman"} <= set(info)
    index = choose_subset(data.y, 0.5, seed=0)
    assert torch.allclose(scores.values[index], full[index], rtol=1e-5, atol=1e-8)


def test_grand_at_initialisation_scores_the_subset_as_the_full_scoring_does():
    """GraNd with ``epochs: 0`` scores fresh initialisations, which do not depend on the training set: the subset
    that extrapolation scores gets the full scoring's values (so only the regression can err)."""
    data = blobs(n=60, seed=4)
    from dataset_pruning.training import ModelSpec

    model = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 8, "depth": 1}).build(seed=0)
    options = {"runs": 3, "epochs": 0, "device": "cpu", "progress": False, "seed": 0}
    full = score_samples("grand", model, data, **options).values
    scores = extrapolate_scores("grand", model, data, config={"fraction": 0.3}, options=options, device="cpu")
    index = choose_subset(data.y, 0.3, seed=0)
    assert torch.allclose(scores.values[index], full[index], rtol=1e-5)  # other batches: float rounding only
    assert scores.info["extrapolation"]["embedding"] in ("features", "logits", "input")


def test_logits_embedding_is_what_the_head_reads():
    """``embedding: logits`` embeds by model(x) = head(features(x)) (n, C), ``features`` by model.features(x)
    (n, a); extrapolate_scores uses the one asked for (a kNN with k = 1 copies the nearest scored sample, so the
    two embeddings give different extrapolations) and says which in its info."""
    data = blobs(n=60, seed=5)
    from dataset_pruning.training import ModelSpec, TrainingConfig, fit

    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 8, "depth": 1})
    model = spec.build(seed=0)
    fit(model, data, TrainingConfig(epochs=5, batch_size=16, amp=False, device="cpu"), progress=False)
    model.eval()
    with torch.no_grad():
        logits, features = model(data.x), model.features(data.x)
    assert torch.allclose(embed(model, data, embedding="logits", batch_size=7, device="cpu"), logits, atol=1e-6)
    assert torch.allclose(embed(model, data, batch_size=7, device="cpu"), features, atol=1e-6)
    with pytest.raises(ValueError, match="embedding must be one of features, logits, input"):
        embed(model, data, embedding="pixels")
    every = embed(model, data, embedding=["input", "features", "logits"], batch_size=7, device="cpu")  # one pass
    assert list(every) == ["input", "features", "logits"] and torch.equal(every["input"], data.x.flatten(1))
    assert torch.allclose(every["features"], features, atol=1e-6) and torch.allclose(every["logits"], logits, atol=1e-6)
    values = {}
    for embedding in ("features", "logits"):
        scores = extrapolate_scores(
            "influence_norm", model, data, config={"fraction": 0.3, "k": 1, "embedding": embedding},
            options={"device": "cpu", "progress": False}, device="cpu",
        )
        assert scores.info["extrapolation"]["embedding"] == embedding
        values[embedding] = scores.values
    assert not torch.equal(values["features"], values["logits"])
