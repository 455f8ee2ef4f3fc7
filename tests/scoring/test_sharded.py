"""Last-layer influence and the scalar scorers in shards on a Dask LocalCluster equal the one-process S and scores,
and a memory-mapped S selects the same samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dask import distributed

from dataset_pruning.config import ScoringParams
from dataset_pruning.runtime import limit_threads
from dataset_pruning.scoring import score_samples, scorer_options
from dataset_pruning.scoring.influence import BLOCK_BATCHES
from dataset_pruning.scoring.sharded import (SHARDED_METHODS, shard_bounds, sharded_last_layer_influence,
                                            sharded_scores)
from dataset_pruning.scoring.trace import TraceRecorder
from dataset_pruning.selection import select_removed
from dataset_pruning.training import ModelSpec, TrainingConfig, fit, save_model

from .conftest import blobs

pytestmark = pytest.mark.slow  # a LocalCluster start


def test_shards_are_whole_blocks_of_whole_batches():
    assert shard_bounds(1000, 16, 2) == [(0, 2 * BLOCK_BATCHES * 16), (512, 1000)]
    assert shard_bounds(10, 16, 1) == [(0, 10)]


@pytest.mark.parametrize("processes", [False, True])
def test_sharded_influence_is_the_one_process_s(tmp_path, tiny_spec, processes):
    """Bit for bit, with thread workers and with process workers."""
    train = blobs(n=1100, seed=3)  # batch 16: blocks of 256 rows, shards of 512: three shards, the last short
    model = tiny_spec.build(seed=0)
    fit(model, train, TrainingConfig(epochs=3, lr=0.1, device="cpu"), progress=False)
    with limit_threads(1):
        one = score_samples("last_layer_influence", model, train, batch_size=16, device="cpu", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            sharded = sharded_last_layer_influence(save_model(model, tiny_spec), train, client, tmp_path / "S.npy",
                                                   batch_size=16, blocks_per_shard=2)
    assert isinstance(sharded, np.memmap) and sharded.shape == tuple(one.values.shape)
    assert np.array_equal(np.asarray(sharded), one.values.numpy())
    if processes:
        return
    # a memory-mapped S gives the same selection as the array in memory
    in_memory = np.load(tmp_path / "S.npy")
    for solver in ("greedy", "hybrid"):
        assert np.array_equal(select_removed(sharded, problem="cardinality", solver=solver, ratio=0.5),
                              select_removed(in_memory, problem="cardinality", solver=solver, ratio=0.5))
    assert not torch.equal(one.values, torch.zeros_like(one.values))


def test_the_scoring_node_shards_on_request(tiny_spec):
    from dataset_pruning.pipelines.influence_scoring.nodes import score_influence

    train = blobs(n=300, seed=4)
    model = tiny_spec.build(seed=0)
    fit(model, train, TrainingConfig(epochs=2, lr=0.1, device="cpu"), progress=False)
    saved, erm = save_model(model, tiny_spec), {"training": {"weight_decay": 1e-3}}
    plain = score_influence(saved, train, {"influence": {"batch_size": 16}}, erm)
    sharded = score_influence(saved, train, {"influence": {"batch_size": 16}, "sharding": {"n_workers": 2}}, erm)
    assert np.abs(np.asarray(sharded) - plain).max() <= 1e-5 * np.abs(plain).max()
    with pytest.raises(ValueError, match="sharding computes the exact Hessian"):  # the block's check, before ERM
        ScoringParams.model_validate({"influence": {"hessian": "lissa"}, "sharding": {"n_workers": 1}})


# small options so that every method cuts 1,100 samples into several shards (batches of 16, shards of 512 rows) or runs
SMALL = {"el2n": {"runs": 3, "epochs": 1, "batch_size": 16}, "grand": {"runs": 3, "epochs": 1, "batch_size": 16},
         "herding": {"batch_size": 16}, "influence_norm": {"batch_size": 16, "weight_decay": 1e-3},
         "moso": {"batch_size": 64}}


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained with its dynamics recorded: (train, model, saved model, trace)."""
    train = blobs(n=1100, seed=3)
    spec = ModelSpec("mlp", train.input_shape, train.num_classes, {"hidden": 8, "depth": 1})
    model = spec.build(seed=0)
    config = TrainingConfig(epochs=3, lr=0.1, device="cpu")
    recorder = TraceRecorder(model, train, config, spec, dynamics=True, checkpoints=3)
    with limit_threads(1):
        fit(model, train, config, progress=False, **recorder.callbacks())
    return train, model, save_model(model, spec), recorder.finish()


@pytest.mark.parametrize("processes", [False, True])
def test_sharded_scalar_scores_are_the_one_process_scores(trained, processes):
    """Every sharded scalar scorer, bit for bit, on thread and on process workers."""
    train, model, saved, trace = trained
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            for method in SHARDED_METHODS:
                options = {**SMALL.get(method, {}), **({"device": "cpu"} if "device" in scorer_options(method) else {})}
                with limit_threads(1):
                    one = score_samples(method, model, train, trace=trace, **options)
                sharded = sharded_scores(method, saved, train, client, trace=trace, options=options, batch_size=16,
                                         blocks_per_shard=2)
                assert torch.equal(sharded.values, one.values), method
                assert sharded.keep == one.keep and sharded.info.items() >= one.info.items(), method
                assert sharded.info["shards"] == 3, method  # 3 shards of rows, 3 runs or 3 checkpoints
            surrogates = {"surrogates": 3, "checkpoints": 2, "batch_size": 64, "device": "cpu"}
            with limit_threads(1):
                one = score_samples("moso", model, train, trace=trace, **surrogates)
            sharded = sharded_scores("moso", saved, train, client, trace=trace, options=surrogates)
            assert torch.equal(sharded.values, one.values) and sharded.info["shards"] == 3
            kernel = {"kernel": "rbf", "device": "cpu"}  # kernel herding, per class on the gathered features too
            with limit_threads(1):
                one = score_samples("herding", model, train, **kernel)
            sharded = sharded_scores("herding", saved, train, client, options=kernel, batch_size=16)
            assert torch.equal(sharded.values, one.values) and sharded.info["kernel"] == "rbf"
    assert SHARDED_METHODS == ("aum", "dynamic_uncertainty", "el2n", "forgetting", "grand", "herding", "influence_norm",
                               "moso", "tdds")


def test_sharded_scores_refuse_what_they_cannot_shard(trained):
    train, _, saved, trace = trained
    with pytest.raises(ValueError, match="has no sharded form"):
        sharded_scores("random", saved, train, client=None, trace=trace)
    with pytest.raises(ValueError, match="takes no option"):
        sharded_scores("aum", saved, train, client=None, trace=trace, options={"window": 3})
    with pytest.raises(ValueError, match="influence_norm with the exact Hessian"):  # the block's check, before ERM
        ScoringParams.model_validate({"method": "influence_norm", "options": {"hessian": "lissa"},
                                      "sharding": {"n_workers": 1}})


def test_the_scoring_node_shards_scalar_methods(trained):
    from dataset_pruning.pipelines.influence_scoring.nodes import score_method

    train, _, saved, trace = trained
    erm = {"training": {"weight_decay": 1e-3, "seed": 0}}
    for method, options in (("tdds", {}), ("herding", {"batch_size": 16})):
        params = {"method": method, "options": options, "device": "cpu"}
        plain, _ = score_method(saved, trace, train, params, erm)
        sharded, _ = score_method(saved, trace, train, {**params, "sharding": {"n_workers": 2}}, erm)
        assert np.array_equal(sharded["values"], plain["values"]) and sharded["info"]["shards"] >= 1


def test_a_method_without_a_sharded_form_runs_in_one_process_and_says_so(trained, caplog):
    from dataset_pruning.pipelines.influence_scoring.nodes import score_method

    train, _, saved, trace = trained
    erm = {"training": {"weight_decay": 1e-3, "seed": 0}}
    plain, _ = score_method(saved, trace, train, {"method": "random"}, erm)
    with caplog.at_level("WARNING"):
        sharded, _ = score_method(saved, trace, train, {"method": "random", "sharding": {"n_workers": 2}}, erm)
    assert np.array_equal(sharded["values"], plain["values"])
    assert "random has no sharded form" in caplog.text
