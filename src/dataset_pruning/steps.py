"""The method's steps as plain functions, called by both the Kedro nodes (``pipelines/``) and the sweep's tasks
(``experiments/tasks.py``), so that a ``prune`` run and a sweep cell with the same parameters run the same code:
ERM with its training trace, the options a scorer gets from the run, retraining on the kept samples, and the
figures of a pruned run. Where the two differ (the sweep caches each piece and runs on Dask workers, the nodes
save through the catalog), the difference lives in the callers.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from dataset_pruning.data import TensorData, kept_indices
from dataset_pruning.runtime import release_pages
# run_options: re-exported, the nodes and the sweep's tasks call steps.run_options
from dataset_pruning.scoring import TraceRecorder, TrainingTrace, run_options  # noqa: F401
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

EpochCallback = Callable[[int, torch.nn.Module], None]


def train_erm(train: TensorData, spec: ModelSpec, recipe: TrainingConfig, trace: dict[str, Any], *,
              progress: bool = True, on_epoch_end: EpochCallback | None = None
              ) -> tuple[torch.nn.Module, TrainingTrace]:
    """Step 1: ``spec``'s model, initialised with the recipe's seed, fitted on the whole training set while the
    training trace records what ``trace`` (``TraceRecorder``'s options) asks for; ``on_epoch_end`` runs after the
    recorder's own callback. (model, trace)."""
    model = spec.build(seed=recipe.seed)
    recorder = TraceRecorder(model, train, recipe, spec, **trace)
    callbacks = recorder.callbacks()
    if on_epoch_end is not None:
        traced = callbacks.get("on_epoch_end")

        def both(epoch: int, trained: torch.nn.Module) -> None:
            if traced is not None:
                traced(epoch, trained)
            on_epoch_end(epoch, trained)

        callbacks["on_epoch_end"] = both
    fit(model, train, recipe, progress=progress, desc="ERM training", **callbacks)
    return model, recorder.finish()


def retrain(train: TensorData, removed: np.ndarray | list[int], spec: ModelSpec, recipe: TrainingConfig, *,
            progress: bool = True, on_epoch_end: EpochCallback | None = None) -> tuple[torch.nn.Module, list[float]]:
    """Step 4: a fresh ``spec`` model (the recipe's seed) fitted on the samples not in ``removed``, with ``recipe``
    (``training.retraining_recipe``'s, for the budget). (model, mean training loss per epoch)."""
    model = spec.build(seed=recipe.seed)
    kept = train.subset(torch.as_tensor(kept_indices(len(train), removed)), name=f"{train.name}-pruned")
    release_pages(train.x)  # the kept copy is what training reads: a memory-mapped full set need not stay resident
    history = fit(model, kept, recipe, progress=progress, desc="retraining", on_epoch_end=on_epoch_end)
    return model, history


def pruning_metrics(n: int, removed: np.ndarray | list[int], full: dict[str, float], pruned: dict[str, float],
                    theorem: dict[str, float]) -> dict[str, float]:
    """The figures of a pruned run: Theorem 1's quantities (``theorem``: ``selection.theorem_quantities`` or the
    selection's own eps, eps/n, m/n^2), the fraction removed, the full and pruned models' test loss and accuracy
    (``full``, ``pruned``: ``training.evaluate``'s dicts) and the generalization gap (pruned minus full loss)."""
    return {
        **theorem,
        "ratio": len(removed) / n,
        "full_test_loss": full["loss"],
        "full_test_accuracy": full["accuracy"],
        "pruned_test_loss": pruned["loss"],
        "pruned_test_accuracy": pruned["accuracy"],
        "generalization_gap": pruned["loss"] - full["loss"],
    }
