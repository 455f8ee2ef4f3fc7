"""The proxy-vs-full figure of an architecture search (matplotlib ``Figure`` objects, no pyplot state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dataset_pruning.nas.proxy import PROXIES


def proxy_accuracy_figure(table: pd.DataFrame, summary: dict[str, float], top_k: int = 10) -> Figure:
    """One panel per proxy (all but ``full``): its test accuracy against the full-data test accuracy, one point per
    architecture; the proxy's first choice is circled and the diagonal drawn."""
    proxies = [p for p in PROXIES if p != "full" and f"{p}_test_accuracy" in table]
    figure = Figure(figsize=(5 * max(len(proxies), 1), 4.5))
    axes = figure.subplots(1, max(len(proxies), 1), squeeze=False)[0]
    full = table["full_test_accuracy"].to_numpy(dtype=np.float64)
    for axis, proxy in zip(axes, proxies):
        accuracy = table[f"{proxy}_test_accuracy"].to_numpy(dtype=np.float64)
        best = int(np.argmax(accuracy))
        axis.scatter(full, accuracy, s=18, alpha=0.7, label="architecture")
        axis.scatter(full[best], accuracy[best], s=120, facecolors="none", edgecolors="tab:red",
                     label=f"proxy's first choice (full acc. {full[best]:.3f})")
        low = float(min(full.min(), accuracy.min()))
        axis.plot([low, 1.0], [low, 1.0], color="grey", linewidth=0.8, linestyle="--")
        samples = int(table[f"{proxy}_train_samples"].iloc[0])
        axis.set_title(
            f"{proxy} proxy ({samples} samples): Spearman {summary[f'{proxy}.spearman']:.2f}, "
            f"top {top_k} {summary[f'{proxy}.spearman_top{top_k}']:.2f}",
            fontsize=9,
        )
        axis.set_xlabel("test accuracy, trained on full data")
        axis.set_ylabel(f"test accuracy, trained on the {proxy} proxy")
        axis.legend(fontsize=8, loc="upper left")
    figure.suptitle(f"{len(table)} architectures of the 720-ConvNet space")
    figure.tight_layout()
    return figure
