"""Figures of a pruning run (matplotlib, no Kedro)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dataset_pruning.runtime import row_blocks  # noqa: E402
from dataset_pruning.selection.objective import row_squares  # noqa: E402


def run_fields(params: dict[str, Any]) -> dict[str, Any]:
    """What a run is, from its parameter blocks: dataset, model, method, solver, problem, ratio, eps, seed (the MLflow
    run's tags, name and figure title)."""
    block = lambda key: params.get(key) or {}  # noqa: E731
    selection = block("optimization_selection")
    return {
        "dataset": block("ingest").get("dataset"),
        "model": (block("erm_training").get("model") or {}).get("name"),
        "method": block("influence_scoring").get("method"),
        "solver": selection.get("solver") if selection.get("rule", "score") == "score" else selection["rule"],
        "problem": selection.get("problem", "cardinality"),
        "ratio": selection.get("ratio"),
        "eps": selection.get("eps"),
        "seed": (block("erm_training").get("training") or {}).get("seed"),
    }


def run_label(params: dict[str, Any]) -> str:
    """``mnist1d·cnn1d·last_layer_influence·hybrid·r0.50·s0`` (Eq. 3: ``e0.01``): the MLflow run name and the title
    of its figure."""
    f = run_fields(params)
    budget = f"r{f['ratio']:.2f}" if f["problem"] == "cardinality" else f"e{f['eps']}"
    return "·".join(map(str, [f["dataset"], f["model"], f["method"], f["solver"], budget, f"s{f['seed']}"]))


def pruning_figure(influence: np.ndarray, removed: np.ndarray, metrics: dict[str, float], labels: np.ndarray,
                   title: str = ""):
    """Left: ||S_i|| of kept and removed samples (log axis). Middle: kept samples per class. Right: test accuracy
    before and after. ``title`` says what the run is (``run_label``)."""
    # a block at a time: of a memory-mapped S, one block is resident
    norms = np.sqrt(np.concatenate([row_squares(block) for block in row_blocks(influence)]))
    mask = np.zeros(len(norms), dtype=bool)
    mask[np.asarray(removed, dtype=np.int64)] = True
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
    positive = norms[norms > 0]
    low, high = (positive.min(), positive.max()) if len(positive) else (1e-12, 1.0)
    bins = np.geomspace(low, high * (1 + 1e-9), 50)
    left.hist(np.clip(norms[~mask], low, None), bins=bins, alpha=0.6, label=f"kept ({(~mask).sum()})")
    left.hist(np.clip(norms[mask], low, None), bins=bins, alpha=0.6, label=f"removed ({mask.sum()})")
    left.set_xscale("log")
    left.set_xlabel("||S_i||_2 (log)")
    left.set_ylabel("samples")
    left.set_title(f"eps = {metrics['eps']:.3g}, eps/n = {metrics['eps_over_n']:.3g}")
    left.legend()
    classes = np.unique(labels)
    total = np.array([(labels == c).sum() for c in classes])
    kept = np.array([((labels == c) & ~mask).sum() for c in classes])
    middle.bar(classes, total, color="lightgrey", label="all")
    middle.bar(classes, kept, color="tab:blue", label="kept")
    middle.set_xticks(classes)
    middle.set_xlabel("class")
    middle.set_ylabel("samples")
    middle.set_title(f"kept per class (fewest: {(kept / np.maximum(total, 1)).min():.0%} of its class)")
    middle.legend()
    names = ["full data", "pruned"]
    accuracies = [metrics["full_test_accuracy"], metrics["pruned_test_accuracy"]]
    right.bar(names, accuracies, color=["tab:blue", "tab:orange"])
    for x, acc in enumerate(accuracies):
        right.text(x, acc, f"{acc:.3f}", ha="center", va="bottom")
    right.set_ylim(0, 1)
    right.set_ylabel("test accuracy")
    right.set_title(f"gap (test loss after - before) = {metrics['generalization_gap']:.4f}")
    fig.suptitle(f"{title}: removed {mask.sum()} of {len(mask)} ({mask.mean():.0%})" if title else "")
    fig.tight_layout()
    return fig
