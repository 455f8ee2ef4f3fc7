"""Proxy evaluation: the proxies' indices, the summary maths on hand-made numbers, Dask == serial."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dataset_pruning.data import TensorData
from dataset_pruning.nas import ConvNetArch
from dataset_pruning.nas.proxy import (
    METRICS,
    PeakMemory,
    proxy_indices,
    run_search,
    spearman,
    summarise,
    top_k_spearman,
)
from dataset_pruning.training import TrainingConfig


def test_proxy_indices():
    removed = [0, 3, 4, 9]
    proxies = proxy_indices(10, removed, seed=0)
    assert proxies["full"].tolist() == list(range(10))
    assert proxies["pruned"].tolist() == [1, 2, 5, 6, 7, 8]
    assert len(proxies["random"]) == 6 and len(set(proxies["random"].tolist())) == 6
    assert proxies["random"].tolist() == proxy_indices(10, removed, seed=0)["random"].tolist()
    assert proxy_indices(10, [], seed=0)["pruned"].tolist() == list(range(10))
    with pytest.raises(ValueError, match="lie in"):
        proxy_indices(10, [10], seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        proxy_indices(10, [1, 1], seed=0)
    with pytest.raises(ValueError, match="every training sample"):
        proxy_indices(3, [0, 1, 2], seed=0)


def test_spearman_on_hand_made_numbers():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks: ranks (1..5) vs (1, 2, 3.5, 5, 3.5): cov 8, variances 10 and 9.5
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert math.isnan(spearman([0.1, 0.1, 0.1], [1, 2, 3]))  # a constant proxy ranks nothing
    assert math.isnan(spearman([1.0], [2.0]))


def test_top_k_spearman_uses_the_proxys_own_top_k():
    full = np.arange(12, dtype=float)  # architecture i has full accuracy i
    proxy = full.copy()
    proxy[[0, 1]] = [1.0, 0.0]  # the two worst swapped: agreement over all < 1, over the proxy's top 10 = 1
    assert spearman(proxy, full) < 1.0
    assert top_k_spearman(proxy, full, k=10) == pytest.approx(1.0)
    # the proxy's top 3 are architectures 0, 1, 2 (proxy 9, 8, 7) whose full accuracies rank them 2, 1, 0: -1
    proxy = np.array([9.0, 8.0, 7.0, 0, 0, 0])
    full = np.array([0.0, 1.0, 2.0, 9.0, 9.0, 9.0])
    assert top_k_spearman(proxy, full, k=3) == pytest.approx(-1.0)
    assert top_k_spearman(proxy, full, k=50) == pytest.approx(spearman(proxy, full))  # k > n: all


def _table(full, pruned, random, times=(10.0, 1.0, 2.0)) -> pd.DataFrame:
    n = len(full)
    table = pd.DataFrame({"architecture": [f"a{i}" for i in range(n)], "index": range(n)})
    for proxy, accuracy, seconds, samples in zip(("full", "pruned", "random"), (full, pruned, random), times,
                                                 (100, 2, 2)):
        table[f"{proxy}_test_accuracy"] = accuracy
        table[f"{proxy}_test_loss"] = 1.0
        table[f"{proxy}_train_time_s"] = seconds * 0.75
        table[f"{proxy}_eval_time_s"] = seconds * 0.25
        table[f"{proxy}_peak_memory_mb"] = np.arange(n) + samples
        table[f"{proxy}_train_samples"] = samples
    return table


def test_summary_on_hand_made_numbers():
    full = [0.5, 0.9, 0.7, 0.8]
    pruned = [0.2, 0.4, 0.3, 0.35]  # the same order as full
    random = [0.4, 0.1, 0.3, 0.2]  # picks architecture 0 (full 0.5): order reversed
    s = summarise(_table(full, pruned, random), top_k=3)
    assert s["architectures"] == 4
    assert s["full.best_full_accuracy"] == 0.9 and s["full.spearman"] == pytest.approx(1.0)
    assert s["pruned.best_full_accuracy"] == 0.9
    assert s["pruned.spearman"] == pytest.approx(1.0) and s["pruned.spearman_top3"] == pytest.approx(1.0)
    assert s["random.best_full_accuracy"] == 0.5
    assert s["random.spearman"] == pytest.approx(-1.0)
    # search time = train + eval summed over the 4 architectures; ratio full / proxy
    assert s["full.search_time_s"] == pytest.approx(40.0) and s["full.train_time_s"] == pytest.approx(30.0)
    assert s["pruned.search_time_s"] == pytest.approx(4.0) and s["pruned.time_ratio"] == pytest.approx(10.0)
    assert s["random.time_ratio"] == pytest.approx(5.0)
    assert s["pruned.peak_memory_mb"] == 2 + 3 and s["full.peak_memory_mb"] == 100 + 3
    assert s["pruned.train_samples"] == 2


def test_summary_needs_the_full_data_column():
    table = _table([0.5, 0.9], [0.2, 0.4], [0.1, 0.3]).drop(columns=["full_test_accuracy"])
    with pytest.raises(ValueError, match="full_test_accuracy"):
        summarise(table)


def _tiny_data(n: int, shape: tuple[int, ...], seed: int) -> TensorData:
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, *shape, generator=generator) + y.view(-1, *([1] * len(shape))).float()
    return TensorData(x, y, 3, f"tiny-{seed}")


RECIPE = TrainingConfig(epochs=2, batch_size=8, lr=0.05, seed=3, device="cpu")
ARCHS = [
    ConvNetArch(32, 2, "relu", "batch", "max"),
    ConvNetArch(64, 1, "sigmoid", "group", "none"),
    ConvNetArch(128, 4, "leakyrelu", "instance", "avg"),
]
SEARCH = {"seed": 1, "width_scale": 0.125, "progress": False}


def test_serial_search_table_and_determinism():
    train, test = _tiny_data(40, (16,), 0), _tiny_data(12, (16,), 1)
    table = run_search(ARCHS, train, test, [0, 5, 7, 20], RECIPE, executor="serial", **SEARCH)
    assert table["architecture"].tolist() == [a.name for a in ARCHS]
    assert [c for c in table.columns if c.startswith("pruned_")] == [f"pruned_{m}" for m in METRICS]
    assert table["full_train_samples"].tolist() == [40] * 3
    assert table["pruned_train_samples"].tolist() == table["random_train_samples"].tolist() == [36] * 3
    assert table.filter(like="_test_accuracy").apply(lambda c: c.between(0, 1).all()).all()
    assert (table.filter(like="_peak_memory_mb") > 0).all().all()
    again = run_search(ARCHS, train, test, [0, 5, 7, 20], RECIPE, executor="serial", **SEARCH)
    columns = [c for c in table.columns if c.endswith(("_test_accuracy", "_test_loss"))]
    pd.testing.assert_frame_equal(table[columns], again[columns])


def test_image_architectures_search():
    train, test = _tiny_data(24, (1, 16, 16), 0), _tiny_data(9, (1, 16, 16), 1)
    table = run_search(ARCHS[:2], train, test, [1, 2], RECIPE, executor="serial", proxies=("full", "pruned"),
                       **SEARCH)
    assert list(table.filter(like="_test_accuracy").columns) == ["full_test_accuracy", "pruned_test_accuracy"]
    assert np.isfinite(table["pruned_test_loss"]).all()


@pytest.mark.slow  # a LocalCluster start: ~10-25 s on 2 busy cores
def test_dask_gives_the_serial_results():
    train, test = _tiny_data(40, (16,), 0), _tiny_data(12, (16,), 1)
    removed = [0, 5, 7, 20, 33]
    serial = run_search(ARCHS, train, test, removed, RECIPE, executor="serial", **SEARCH)
    dask = run_search(ARCHS, train, test, removed, RECIPE, executor="dask", n_workers=2, **SEARCH)
    columns = [c for c in serial.columns if not c.endswith(("_time_s", "_peak_memory_mb"))]
    pd.testing.assert_frame_equal(serial[columns], dask[columns])


def test_bad_search_options():
    train, test = _tiny_data(10, (16,), 0), _tiny_data(4, (16,), 1)
    with pytest.raises(ValueError, match="unknown executor"):
        run_search(ARCHS[:1], train, test, [], RECIPE, executor="ray", **SEARCH)
    with pytest.raises(ValueError, match="unknown proxies"):
        run_search(ARCHS[:1], train, test, [], RECIPE, proxies=("herding",), **SEARCH)
    with pytest.raises(ValueError, match="no architecture"):
        run_search([], train, test, [], RECIPE, **SEARCH)


def test_peak_memory_on_cpu():
    with PeakMemory(torch.device("cpu")) as memory:
        block = torch.ones(4 * 2**20)  # 16 MiB
        del block
    assert memory.peak_mb > 16
