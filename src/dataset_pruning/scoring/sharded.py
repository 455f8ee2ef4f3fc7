"""Scoring in shards on Dask workers: the same S and the same scalar scores as one process.

Last-layer influence: two rounds over contiguous shards of rows. (1) Each worker computes its shard's features and
probabilities and the head Hessian's unnormalised sums over blocks of ``BLOCK_BATCHES`` batches; the driver adds the
blocks in order (as ``head_hessian`` does in one process), adds the weight decay and damping and inverts H once
(``damped_inverse``). (2) Each worker multiplies its rows' gradients by that inverse and writes them into the shared
``.npy`` (``numpy.lib.format.open_memmap``), so S is never gathered in one process; the result is returned
memory-mapped. Shards are whole blocks and blocks whole batches, so every batch, every block sum and every product is
the one-process computation: with the same number of torch and BLAS threads (``runtime.limit_threads``) S is
identical bit for bit, on thread and on process workers (tested on a LocalCluster).

Scalar scorers (``sharded_scores``, the methods of ``SHARDED_METHODS``), each the one-process computation cut where
it is independent:

- rows, for the scores of one sample that read only its own trace columns (``forgetting``, ``aum``,
  ``dynamic_uncertainty``, ``tdds``): each worker scores its shard with ``TrainingTrace.sample_rows``;
- rows then classes for ``herding``: each worker computes its shard's features and splits them by class; one task
  per class orders that class's features (gathered in index order, as one process holds them);
- rows after the shared Hessian for ``influence_norm``: round (2) above returns each row's norm instead of writing
  it, so S is never formed;
- runs for ``el2n`` and ``grand``: each task trains one early run (``early_training.early_model``) and scores every
  sample; the driver adds the runs in run order (``early_training.mean_of_runs``);
- checkpoints for ``moso`` (one task per ERM checkpoint, added in order), or surrogates (one task per part):
  ``moso.moso`` with a Dask mapper.

Workers compute on their CPUs with ``threads`` torch and BLAS threads each.
"""

from __future__ import annotations

import operator
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import limit_threads
from dataset_pruning.scoring.base import SCORERS, SampleScores, score_samples
from dataset_pruning.scoring.early_training import check_early_runs, early_model, early_schedule, mean_of_runs
from dataset_pruning.scoring.el2n import run_error_norms
from dataset_pruning.scoring.grand import gradient_norms
from dataset_pruning.scoring.herding import class_members, herding_class, herding_space, rank_scores
from dataset_pruning.scoring.influence import (
    BLOCK_BATCHES,
    head_inputs,
    hessian_block_sums,
    damped_inverse,
    influence_info,
    influence_rows,
    mean_hessian,
)
from dataset_pruning.scoring.influence_norm import row_norms
from dataset_pruning.scoring.moso import moso
from dataset_pruning.training import load_model

ROW_METHODS = ("aum", "dynamic_uncertainty", "forgetting", "tdds")  # one sample's score reads its own trace columns
RUN_SCORERS = {"el2n": run_error_norms, "grand": gradient_norms}  # one early run's scores of every sample
SHARDED_METHODS = tuple(sorted((*ROW_METHODS, *RUN_SCORERS, "herding", "influence_norm", "moso")))


def shard_bounds(n: int, batch_size: int, blocks_per_shard: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard: ``blocks_per_shard`` blocks of ``BLOCK_BATCHES`` batches, the last one shorter."""
    rows = blocks_per_shard * BLOCK_BATCHES * batch_size
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def _scatter_model(client, saved_model: dict[str, Any]):
    """The saved model on every worker, as one future (a scattered dict would become one future per key, under
    the keys' own names, which a later scatter of another model would then reuse)."""
    return client.scatter([saved_model], broadcast=True, hash=False)[0]


def _scatter_shards(client, train: TensorData, bounds: list[tuple[int, int]]) -> list:
    return [client.scatter(train.subset(torch.arange(a, b)), hash=False) for a, b in bounds]


def _hessian_part(saved_model: dict[str, Any], shard: TensorData, batch_size: int, threads: int):
    with limit_threads(threads):
        u, p = head_inputs(load_model(saved_model), shard, batch_size, "cpu")
        return list(hessian_block_sums(u, p, batch_size))


def _solved_rows(saved_model: dict[str, Any], shard: TensorData, inverse: torch.Tensor, n: int, batch_size: int):
    u, p = head_inputs(load_model(saved_model), shard, batch_size, "cpu")
    return influence_rows(u, p, shard.y, inverse, n, batch_size)


def _influence_part(saved_model: dict[str, Any], shard: TensorData, inverse: torch.Tensor, n: int, out: str,
                    start: int, batch_size: int, threads: int) -> int:
    with limit_threads(threads):
        rows = np.lib.format.open_memmap(out, mode="r+")
        for i, block in _solved_rows(saved_model, shard, inverse, n, batch_size):
            rows[start + i : start + i + len(block)] = block.numpy()
        rows.flush()
        return len(shard)


def _norm_part(saved_model: dict[str, Any], shard: TensorData, inverse: torch.Tensor, n: int, batch_size: int,
               threads: int) -> torch.Tensor:
    with limit_threads(threads):
        return torch.cat([row_norms(block) for _, block in _solved_rows(saved_model, shard, inverse, n, batch_size)])


def _head_inverse(client, model, shards: list, n: int, *, weight_decay: float, damping: float, batch_size: int,
                 threads: int) -> torch.Tensor:
    """Round (1): (H + (weight_decay + damping) I)^-1 of the mean head Hessian H, (d, d)."""
    parts = client.gather([client.submit(_hessian_part, model, shard, batch_size, threads, pure=False)
                           for shard in shards])
    with limit_threads(threads):
        return damped_inverse(mean_hessian([block for part in parts for block in part], n), weight_decay + damping)


def sharded_last_layer_influence(
    saved_model: dict[str, Any],
    train: TensorData,
    client,
    out: str | Path,
    *,
    weight_decay: float = 5e-4,
    damping: float = 0.001,
    batch_size: int = 1024,
    blocks_per_shard: int = 1,
    threads: int = 1,
) -> np.ndarray:
    """S of shape (n, d), float32, memory-mapped read-only from ``out`` (written by the workers of ``client``).

    ``saved_model``: the catalog form of the ERM model (``training.save_model``). The exact path only (the Hessian
    is formed and inverted once, on the driver); ``threads`` torch and BLAS threads per task.
    """
    n = len(train)
    if n == 0:
        raise ValueError("sharded influence: the training set is empty")
    bounds = shard_bounds(n, batch_size, blocks_per_shard)
    model = _scatter_model(client, saved_model)
    shards = _scatter_shards(client, train, bounds)
    inverse = _head_inverse(client, model, shards, n, weight_decay=weight_decay, damping=damping,
                          batch_size=batch_size, threads=threads)
    d = len(inverse)
    out = str(out)
    np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, d)).flush()
    inverse = client.scatter(inverse, broadcast=True, hash=False)
    written = client.gather([
        client.submit(_influence_part, model, shard, inverse, n, out, a, batch_size, threads, pure=False)
        for shard, (a, _) in zip(shards, bounds)
    ])
    assert sum(written) == n
    return np.load(out, mmap_mode="r")


def _row_part(method: str, saved_model: dict[str, Any], shard: TensorData, trace: Any, options: dict,
              threads: int) -> SampleScores:
    with limit_threads(threads):
        return score_samples(method, load_model(saved_model), shard, trace=trace, **options)


def _herding_part(saved_model: dict[str, Any], shard: TensorData, space: str, batch_size: int,
                  threads: int) -> dict[int, torch.Tensor]:
    """The shard's herded vectors by class: {class: (its members in the shard, a)}."""
    with limit_threads(threads):
        features = herding_space(load_model(saved_model), shard, space, batch_size, torch.device("cpu"))
        return {c: features[shard.y == c] for c in range(shard.num_classes)}


def _herding_class(pieces: list[torch.Tensor], kernel: str, bandwidth: float, threads: int) -> torch.Tensor:
    with limit_threads(threads):
        return herding_class(torch.cat(pieces), kernel, bandwidth)


def _early_run_part(method: str, saved_model: dict[str, Any], train: TensorData, run: int, schedule: dict,
                    batch_size: int, threads: int) -> tuple[torch.Tensor, bool]:
    with limit_threads(threads):
        model, read = early_model(load_model(saved_model), train, run, device="cpu", **schedule)
        return RUN_SCORERS[method](model, train, batch_size=batch_size, device="cpu"), read


def _unit(fn, threads: int, unit, shared: bytes):
    with limit_threads(threads):
        return fn(unit, **pickle.loads(shared))


def dask_mapper(client, threads: int = 1):
    """A mapper for ``moso.moso``: ``fn(unit, **shared)`` for each unit as one task on ``client``'s workers,
    the results in unit order. The shared arguments travel pickled, scattered once (Dask's own serialisation of a
    torch module gives it hook registries that refuse new hooks)."""
    def mapper(fn, units: list, *, progress: bool = False, desc: str = "", **shared) -> list:
        packed = client.scatter([pickle.dumps(shared)], broadcast=True, hash=False)[0]
        return client.gather([client.submit(_unit, fn, threads, unit, packed, pure=False) for unit in units])
    return mapper


def method_options(method: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Every keyword option of ``method``: its signature's defaults updated by ``options`` (``SCORERS.check``d)."""
    return {**SCORERS.options(method), **SCORERS.check(method, options)}


def sharded_scores(
    method: str,
    saved_model: dict[str, Any],
    train: TensorData,
    client,
    *,
    trace: Any = None,
    options: dict[str, Any] | None = None,
    batch_size: int = 1024,
    blocks_per_shard: int = 1,
    threads: int = 1,
) -> SampleScores:
    """The scalar scores of ``method`` (one of ``SHARDED_METHODS``) computed by the workers of ``client``: the
    ``score_samples`` result of one process for the same options (``device``, ``progress``: the workers' CPUs,
    no bars). Shards of rows are ``blocks_per_shard`` blocks of ``BLOCK_BATCHES`` batches of the method's
    ``batch_size`` option, or of ``batch_size`` rows for a method without one."""
    if method not in SHARDED_METHODS:
        raise ValueError(f"scoring method {method!r} has no sharded form; sharded: {', '.join(SHARDED_METHODS)}")
    n = len(train)
    if n == 0:
        raise ValueError(f"sharded {method}: the training set is empty")
    opts = method_options(method, options)
    batch_size = int(opts.get("batch_size", batch_size))
    bounds = shard_bounds(n, batch_size, blocks_per_shard)
    model = _scatter_model(client, saved_model)
    info = {"shards": len(bounds)}
    if method in ROW_METHODS:
        shards = _scatter_shards(client, train, bounds)
        traces = [None if trace is None else client.scatter(trace.sample_rows(a, b), hash=False) for a, b in bounds]
        parts = client.gather([client.submit(_row_part, method, model, shard, part, opts, threads, pure=False)
                               for shard, part in zip(shards, traces)])
        return SampleScores(torch.cat([part.values for part in parts]), method=method, keep=parts[0].keep,
                            info={**parts[0].info, **info})
    if method == "herding":
        shards = _scatter_shards(client, train, bounds)
        parts = [client.submit(_herding_part, model, shard, opts["space"], batch_size, threads, pure=False)
                 for shard in shards]
        members = class_members(train.y, train.num_classes)
        orders = client.gather([
            client.submit(_herding_class, [client.submit(operator.getitem, part, int(train.y[index[0]]))
                                           for part in parts], opts["kernel"], opts["bandwidth"], threads, pure=False)
            for index in members
        ])
        return SampleScores(rank_scores(members, orders, n), method=method, keep="highest",
                            info={"space": opts["space"], "kernel": opts["kernel"], "bandwidth": opts["bandwidth"],
                                  **info})
    if method == "influence_norm":
        if opts["hessian"] != "exact" or opts["indices"] is not None or opts["projection_dim"] is not None:
            raise ValueError("sharded influence_norm computes the exact Hessian's norms of every sample: set "
                             "hessian: exact, no indices nor projection_dim, or sharding: null")
        shards = _scatter_shards(client, train, bounds)
        inverse = _head_inverse(client, model, shards, n, weight_decay=opts["weight_decay"], damping=opts["damping"],
                              batch_size=batch_size, threads=threads)
        inverse = client.scatter(inverse, broadcast=True, hash=False)
        parts = client.gather([client.submit(_norm_part, model, shard, inverse, n, batch_size, threads, pure=False)
                               for shard in shards])
        exact = influence_info("exact", n, weight_decay=opts["weight_decay"], damping=opts["damping"])
        return SampleScores(torch.cat(parts), method=method, keep="highest", info={**exact, **info})
    if method == "moso":
        opts = {**opts, "device": "cpu", "progress": False}
        scores = moso(load_model(saved_model), train, trace=trace, mapper=dask_mapper(client, threads), **opts)
        units = int(opts["surrogates"]) or len(trace.checkpoints)  # one task per surrogate or per checkpoint
        return SampleScores(scores.values, method=method, keep="highest", info={**scores.info, "shards": units})
    config, epochs = early_schedule(opts["recipe"], trace, opts["epochs"])  # el2n, grand: one task per run
    check_early_runs(config, epochs, int(opts["runs"]))
    schedule = {"recipe": config, "epochs": epochs, "seed": opts["seed"], "store": opts["store"]}
    data = client.scatter(train, broadcast=True, hash=False)
    runs = client.gather([client.submit(_early_run_part, method, model, data, k, schedule, batch_size, threads,
                                        pure=False) for k in range(int(opts["runs"]))])
    scores, run_info = mean_of_runs(runs, n, epochs)
    return SampleScores(scores.float(), method=method, keep="highest", info={**run_info, "shards": len(runs)})


__all__ = ["ROW_METHODS", "SHARDED_METHODS", "dask_mapper", "method_options", "shard_bounds",
           "sharded_last_layer_influence", "sharded_scores"]
