"""Architecture search on a proxy training set, against the full-data search (the paper's Table 1, Sec. 6.5).

Every architecture is trained with the same recipe on three training sets and evaluated on the test set:

- ``full``: all n training samples (the search the proxies try to replace);
- ``pruned``: the kept samples, all minus ``removed_indices`` (the dataset-pruning proxy);
- ``random``: a seeded uniform subset of the same size as ``pruned`` (the baseline).

A proxy is good when the architecture it ranks first is also good on full data, and when its ranking agrees with
the full-data ranking (Spearman's rho over all architectures, and over the proxy's own top 10 as in the paper), at
a fraction of the search time. Evaluations run serially or on Dask workers; both give the same numbers for a fixed
seed, because every training is seeded explicitly and runs on ``torch_threads`` threads.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
import warnings
from dataclasses import asdict
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.nas.space import ConvNetArch
from dataset_pruning.runtime import dask_client, limit_threads, numpy_rng, resolve_device
from dataset_pruning.training import TrainingConfig, evaluate, fit

PROXIES = ("full", "pruned", "random")
METRICS = ("test_accuracy", "test_loss", "train_time_s", "eval_time_s", "peak_memory_mb", "train_samples")


def proxy_indices(n: int, removed_indices, seed: int) -> dict[str, np.ndarray]:
    """The training indices of each proxy, int64 sorted: full (n,), pruned (n - m,), random (n - m,)."""
    removed = np.unique(np.asarray(removed_indices, dtype=np.int64))
    if len(removed) != len(np.asarray(removed_indices)):
        raise ValueError("removed_indices contains duplicates; pass the output of the prune pipeline unchanged")
    if len(removed) and (removed[0] < 0 or removed[-1] >= n):
        raise ValueError(f"removed_indices must lie in [0, {n}) for a training set of {n} samples; was the prune "
                         "pipeline run on the same train_set?")
    kept = np.setdiff1d(np.arange(n), removed)
    if len(kept) == 0:
        raise ValueError("removed_indices removes every training sample; prune with a ratio below 1")
    random = np.sort(numpy_rng(seed).choice(n, size=len(kept), replace=False))
    return {"full": np.arange(n, dtype=np.int64), "pruned": kept, "random": random.astype(np.int64)}


class PeakMemory:
    """Peak memory of one evaluation, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only) after a reset. CPU: the peak resident set size of the
    process running the evaluation (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` before it), which
    includes the interpreter and libraries; where that reset is not possible, ``ru_maxrss`` since process start.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            with contextlib.suppress(OSError):
                with open("/proc/self/clear_refs", "w") as handle:
                    handle.write("5")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        try:
            with open("/proc/self/status") as handle:
                line = next(line for line in handle if line.startswith("VmHWM:"))
            self.peak_mb = int(line.split()[1]) / 1024
        except (OSError, StopIteration):
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_up(input_shape: tuple[int, ...], num_classes: int, device: str = "auto", torch_threads: int = 1) -> None:
    """One tiny training in this process, so that one-off costs (lazy imports, kernel set-up: seconds) are not
    counted in the first evaluation's time."""
    data = TensorData(torch.zeros(4, *input_shape), torch.arange(4) % num_classes, num_classes, "warm-up")
    arch = ConvNetArch(32, 1, "relu", "batch", "max")
    evaluate_architecture(arch, "warm-up", data, data, TrainingConfig(epochs=1, batch_size=2, device=device),
                          width_scale=0.125, torch_threads=torch_threads)


def evaluate_architecture(
    arch: ConvNetArch,
    proxy: str,
    train: TensorData,
    test: TensorData,
    recipe: TrainingConfig,
    *,
    width_scale: float = 1.0,
    torch_threads: int = 1,
) -> dict[str, Any]:
    """Train ``arch`` from the seed ``recipe.seed`` on ``train`` (one proxy) and evaluate it on ``test``.

    Returns the architecture's fields, ``proxy`` and ``METRICS``; times are wall-clock seconds of this process.
    """
    device = resolve_device(recipe.device)
    with limit_threads(torch_threads), PeakMemory(device) as memory:
        model = arch.spec(train.input_shape, train.num_classes, width_scale).build(seed=recipe.seed)
        start = time.perf_counter()
        fit(model, train, recipe, progress=False, desc=f"{arch.name} on {proxy}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        trained = time.perf_counter()
        result = evaluate(model, test, device=recipe.device)
        evaluated = time.perf_counter()
    return {
        "architecture": arch.name,
        "index": arch.index,
        **asdict(arch),
        "proxy": proxy,
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "train_time_s": trained - start,
        "eval_time_s": evaluated - trained,
        "peak_memory_mb": memory.peak_mb,
        "train_samples": len(train),
    }


def run_search(
    architectures: list[ConvNetArch],
    train: TensorData,
    test: TensorData,
    removed_indices,
    recipe: TrainingConfig,
    *,
    seed: int = 0,
    width_scale: float = 1.0,
    torch_threads: int = 1,
    executor: Literal["serial", "dask"] = "serial",
    dask_address: str | None = None,
    n_workers: int = 2,
    proxies: tuple[str, ...] = PROXIES,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate every architecture on each of ``proxies``; one row per architecture (see ``wide_table``).

    ``seed`` draws the random proxy; ``recipe.seed`` seeds every model's initialisation and data order.
    ``executor='dask'`` runs the evaluations on a ``dask.distributed`` cluster: the scheduler at ``dask_address``,
    or a ``LocalCluster`` of ``n_workers`` single-threaded worker processes started and closed here (an existing
    cluster's workers should also run one thread each: ``torch_threads`` is set per process).
    """
    if executor not in ("serial", "dask"):
        raise ValueError(f"unknown executor {executor!r}; known: dask, serial")
    if not architectures:
        raise ValueError("no architecture to evaluate; set a sample size of at least 1")
    unknown = set(proxies) - set(PROXIES)
    if unknown or not proxies:
        raise ValueError(f"unknown proxies {sorted(unknown)}; choose among {', '.join(PROXIES)}")
    subsets = {
        proxy: train.subset(torch.as_tensor(indices), name=f"{train.name}-{proxy}")
        for proxy, indices in proxy_indices(len(train), removed_indices, seed).items()
        if proxy in proxies
    }
    # the full-data evaluations are the longest: start them first so the workers finish together
    tasks = [(arch, proxy) for proxy in PROXIES if proxy in proxies for arch in architectures]
    options = {"width_scale": width_scale, "torch_threads": torch_threads}
    bar = tqdm(total=len(tasks), desc="architecture search", unit="training", disable=not progress)
    if executor == "serial":
        warm_up(train.input_shape, train.num_classes, recipe.device, torch_threads)
        rows = []
        for arch, proxy in tasks:
            rows.append(evaluate_architecture(arch, proxy, subsets[proxy], test, recipe, **options))
            bar.update()
    else:
        rows = _run_on_dask(tasks, subsets, test, recipe, options, dask_address, n_workers, bar)
    bar.close()
    return wide_table(rows)


def _run_on_dask(tasks, subsets, test, recipe, options, address, n_workers, bar) -> list[dict[str, Any]]:
    from dask.distributed import as_completed

    with dask_client(address, n_workers) as client:
        remote = {proxy: client.scatter(data, broadcast=True) for proxy, data in subsets.items()}
        remote_test = client.scatter(test, broadcast=True)
        warm = [
            client.submit(warm_up, test.input_shape, test.num_classes, recipe.device, options["torch_threads"],
                          workers=[worker], allow_other_workers=False, pure=False)
            for worker in client.scheduler_info(n_workers=-1)["workers"]
        ]
        client.gather(warm)
        futures = [
            client.submit(evaluate_architecture, arch, proxy, remote[proxy], remote_test, recipe, pure=False, **options)
            for arch, proxy in tasks
        ]
        for _ in as_completed(futures):
            bar.update()
        return client.gather(futures)


def wide_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per architecture (space order): architecture, index, width, depth, activation, normalization,
    pooling, then ``<proxy>_<metric>`` for every proxy and metric of ``METRICS``."""
    long = pd.DataFrame(rows)
    keys = ["architecture", "index", "width", "depth", "activation", "normalization", "pooling"]
    wide = long.pivot(index=keys, columns="proxy", values=list(METRICS))
    wide.columns = [f"{proxy}_{metric}" for metric, proxy in wide.columns]
    ordered = [f"{proxy}_{metric}" for proxy in PROXIES if proxy in set(long["proxy"]) for metric in METRICS]
    return wide[ordered].reset_index().sort_values("index", kind="stable").reset_index(drop=True)


def spearman(a, b) -> float:
    """Spearman's rank correlation (ties get average ranks); NaN with fewer than 2 values or a constant input."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy import stats  # imported on use (SciPy's stats: ~60 MB at every start)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(a, b).statistic)


def top_k_spearman(proxy_accuracy, full_accuracy, k: int = 10) -> float:
    """Spearman between proxy and full-data accuracy over the k architectures the PROXY ranks highest (the
    paper's "selected top 10 models"); ties in the proxy ranking keep table order."""
    proxy_accuracy = np.asarray(proxy_accuracy, dtype=np.float64)
    top = np.argsort(-proxy_accuracy, kind="stable")[:k]
    return spearman(proxy_accuracy[top], np.asarray(full_accuracy, dtype=np.float64)[top])


def summarise(table: pd.DataFrame, top_k: int = 10) -> dict[str, float]:
    """Per proxy p, flat keys ``<p>.<figure>``:

    - ``best_full_accuracy``: full-data test accuracy of the architecture p ranks first (first in order on ties)
    - ``spearman``, ``spearman_top<k>``: rank agreement with the full-data test accuracies (``top_k_spearman``)
    - ``search_time_s``, ``train_time_s``: summed wall time of all its evaluations (train + test, train only),
      i.e. the time of a one-worker search; ``time_ratio`` = full search time / this proxy's search time
    - ``peak_memory_mb``: the largest peak of its evaluations (``PeakMemory``); ``train_samples``
    Plus ``architectures`` (how many were searched).
    """
    if "full_test_accuracy" not in table:
        raise ValueError("the table has no full-data column 'full_test_accuracy'; run the search with all proxies")
    full = table["full_test_accuracy"].to_numpy(dtype=np.float64)
    full_time = float((table["full_train_time_s"] + table["full_eval_time_s"]).sum())
    summary: dict[str, float] = {"architectures": float(len(table))}
    for proxy in PROXIES:
        if f"{proxy}_test_accuracy" not in table:
            continue
        accuracy = table[f"{proxy}_test_accuracy"].to_numpy(dtype=np.float64)
        search_time = float((table[f"{proxy}_train_time_s"] + table[f"{proxy}_eval_time_s"]).sum())
        summary |= {
            f"{proxy}.best_full_accuracy": float(full[int(np.argmax(accuracy))]),
            f"{proxy}.spearman": spearman(accuracy, full),
            f"{proxy}.spearman_top{top_k}": top_k_spearman(accuracy, full, top_k),
            f"{proxy}.search_time_s": search_time,
            f"{proxy}.train_time_s": float(table[f"{proxy}_train_time_s"].sum()),
            f"{proxy}.time_ratio": full_time / search_time if search_time > 0 else math.inf,
            f"{proxy}.peak_memory_mb": float(table[f"{proxy}_peak_memory_mb"].max()),
            f"{proxy}.train_samples": float(table[f"{proxy}_train_samples"].iloc[0]),
        }
    return summary


__all__ = [
    "PROXIES",
    "PeakMemory",
    "evaluate_architecture",
    "proxy_indices",
    "run_search",
    "spearman",
    "summarise",
    "top_k_spearman",
    "warm_up",
    "wide_table",
]
