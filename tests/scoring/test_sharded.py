"""Last-layer influence in shards on a Dask LocalCluster equals the one-process S, and a memory-mapped S selects the
same samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dask import distributed

from dataset_pruning.config import ScoringParams
from dataset_pruning.runtime import limit_threads
from dataset_pruning.scoring import score_samples
from dataset_pruning.scoring.influence import BLOCK_BATCHES
from dataset_pruning.scoring.sharded import shard_bounds, sharded_last_layer_influence
from dataset_pruning.selection import select_removed
from dataset_pruning.training import TrainingConfig, fit, save_model

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
