"""Figures of a pruning run (matplotlib, no Kedro)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pruning_figure(influence: np.ndarray, removed: np.ndarray, metrics: dict[str, float]):
    """Left: the influence norms ||S_i|| of kept and removed samples. Right: test accuracy before and after."""
    norms = np.linalg.norm(influence, axis=1)
    mask = np.zeros(len(norms), dtype=bool)
    mask[np.asarray(removed, dtype=np.int64)] = True
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    bins = np.histogram_bin_edges(norms, bins=50)
    left.hist(norms[~mask], bins=bins, alpha=0.6, label=f"kept ({(~mask).sum()})")
    left.hist(norms[mask], bins=bins, alpha=0.6, label=f"removed ({mask.sum()})")
    left.set_xlabel("||S_i||_2")
    left.set_ylabel("samples")
    left.set_title(f"eps = {metrics['eps']:.3g}, eps/n = {metrics['eps_over_n']:.3g}")
    left.legend()
    labels = ["full data", "pruned"]
    accuracies = [metrics["full_test_accuracy"], metrics["pruned_test_accuracy"]]
    right.bar(labels, accuracies, color=["tab:blue", "tab:orange"])
    for x, acc in enumerate(accuracies):
        right.text(x, acc, f"{acc:.3f}", ha="center", va="bottom")
    right.set_ylim(0, 1)
    right.set_ylabel("test accuracy")
    right.set_title(f"gap (test loss after - before) = {metrics['generalization_gap']:.4f}")
    fig.tight_layout()
    return fig
