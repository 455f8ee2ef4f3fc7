"""Last-layer influence in shards on Dask workers: the same S as one process, written to one ``.npy``.

Two rounds over contiguous shards of rows. (1) Each worker computes its shard's features and probabilities and the
head Hessian's unnormalised sums over blocks of ``BLOCK_BATCHES`` batches; the driver adds the blocks in order
(as ``head_hessian`` does in one process), adds the weight decay and damping and inverts H once
(``damped_inverse``). (2) Each worker multiplies its rows' gradients by that inverse and writes them into the shared
``.npy`` (``numpy.lib.format.open_memmap``), so S is never gathered in one process; the result is returned
memory-mapped. Shards are whole blocks and blocks whole batches, so every batch, every block sum and every product is
the one-process computation: with the same number of torch and BLAS threads (``runtime.limit_threads``) S is
identical bit for bit, on thread and on process workers (tested on a LocalCluster).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import limit_threads
from dataset_pruning.scoring.influence import (
    BLOCK_BATCHES,
    head_inputs,
    hessian_block_sums,
    damped_inverse,
    influence_rows,
    mean_hessian,
)
from dataset_pruning.training import load_model


def shard_bounds(n: int, batch_size: int, blocks_per_shard: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard: ``blocks_per_shard`` blocks of ``BLOCK_BATCHES`` batches, the last one shorter."""
    rows = blocks_per_shard * BLOCK_BATCHES * batch_size
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def _hessian_part(saved_model: dict[str, Any], shard: TensorData, batch_size: int, threads: int):
    with limit_threads(threads):
        u, p = head_inputs(load_model(saved_model), shard, batch_size, "cpu")
        return list(hessian_block_sums(u, p, batch_size))


def _influence_part(saved_model: dict[str, Any], shard: TensorData, inverse: torch.Tensor, n: int, out: str,
                    start: int, batch_size: int, threads: int) -> int:
    with limit_threads(threads):
        u, p = head_inputs(load_model(saved_model), shard, batch_size, "cpu")
        rows = np.lib.format.open_memmap(out, mode="r+")
        for i, block in influence_rows(u, p, shard.y, inverse, n, batch_size):
            rows[start + i : start + i + len(block)] = block.numpy()
        rows.flush()
        return len(shard)


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
    model = client.scatter(saved_model, broadcast=True)
    shards = [client.scatter(train.subset(torch.arange(a, b))) for a, b in bounds]
    parts = client.gather([client.submit(_hessian_part, model, shard, batch_size, threads, pure=False)
                           for shard in shards])
    with limit_threads(threads):
        inverse = damped_inverse(mean_hessian([block for part in parts for block in part], n), weight_decay + damping)
    d = len(inverse)
    out = str(out)
    np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, d)).flush()
    inverse = client.scatter(inverse, broadcast=True)
    written = client.gather([
        client.submit(_influence_part, model, shard, inverse, n, out, a, batch_size, threads, pure=False)
        for shard, (a, _) in zip(shards, bounds)
    ])
    assert sum(written) == n
    return np.load(out, mmap_mode="r")


__all__ = ["shard_bounds", "sharded_last_layer_influence"]
