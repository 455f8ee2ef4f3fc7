"""NAS proxy evaluation (step 5): search a sample of the 720-ConvNet space on full data, on the pruned proxy
(all minus removed_indices) and on a random subset of the same size, and compare their rankings (Sec. 6.5)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from dataset_pruning.config import NasParams, block
from dataset_pruning.data import TensorData
from dataset_pruning.nas import sample_architectures
from dataset_pruning.nas.figure import proxy_accuracy_figure
from dataset_pruning.nas.proxy import run_search, summarise
from dataset_pruning.pipelines import tracked


def search_architectures(
    train_set: TensorData, test_set: TensorData, removed_indices: list[int], params: dict
) -> pd.DataFrame:
    """nas_results: one row per architecture, ``<proxy>_<metric>`` columns (``nas.proxy.wide_table``)."""
    p: NasParams = block("nas_proxy_eval", params)
    return run_search(
        sample_architectures(p.sample_size, p.seed),
        train_set,
        test_set,
        removed_indices,
        p.training.recipe(),
        seed=p.seed,
        width_scale=p.width_scale,
        torch_threads=p.torch_threads,
        executor=p.executor,
        dask_address=p.dask.address,
        n_workers=p.dask.n_workers,
    )


def summarise_search(nas_results: pd.DataFrame, params: dict) -> tuple[dict[str, float], dict[str, Any], Figure]:
    """nas_summary (plain dict), the same as MLflow metrics (prefix ``nas``), and the proxy-vs-full figure."""
    p: NasParams = block("nas_proxy_eval", params)
    summary = summarise(nas_results, top_k=p.top_k)
    return summary, tracked(summary), proxy_accuracy_figure(nas_results, summary, top_k=p.top_k)
