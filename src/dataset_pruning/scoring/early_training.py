"""Short training runs from fresh initialisations, shared by EL2N and GraNd ("Deep Learning on a Data Diet").

Paul et al. score a few epochs into training (epoch 20 of 200 on CIFAR-10) and average over >= 10 independent
runs. Each run here is a fresh seeded initialisation of the scored architecture trained with the ERM recipe,
stopped after ``epochs`` epochs *of the full schedule* (the learning rate is the full run's at that epoch, not a
schedule compressed into the short run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, Scorer, scorer
from dataset_pruning.scoring.gradients import reinitialised
from dataset_pruning.training import TrainingConfig, fit


class _StopTraining(Exception):
    """Raised by the epoch callback to stop ``fit`` after the scoring epoch."""


def training_recipe(recipe: TrainingConfig | dict | None, trace: Any) -> TrainingConfig:
    """The recipe of the short runs: ``recipe`` if given, else the ERM run's (``trace.config``), else
    ``TrainingConfig()``, whose defaults are the pipeline's ERM recipe (lr 0.1, 60 epochs)."""
    if isinstance(recipe, TrainingConfig):
        return recipe
    if recipe is not None:
        return TrainingConfig(**recipe)
    if trace is not None:
        return TrainingConfig(**trace.config)
    return TrainingConfig()


def default_epochs(recipe: TrainingConfig) -> int:
    """10% of the recipe's epochs, at least 1: Data Diet's epoch 20 of 200."""
    return max(1, round(0.1 * recipe.epochs))


def early_schedule(recipe: TrainingConfig | dict | None, trace: Any, epochs: int | None) -> tuple[TrainingConfig, int]:
    """The short runs' recipe (``training_recipe``) and epochs (default: ``default_epochs`` of it)."""
    config = training_recipe(recipe, trace)
    return config, default_epochs(config) if epochs is None else int(epochs)


def _run_file(store: str | Path, fresh: nn.Module, train: TensorData, config: TrainingConfig, epochs: int) -> Path:
    """Where one short run's weights are kept: named by a digest of all that determines them (the initial weights,
    the training data, the recipe with its seed, the epochs), so a file is reused only for the same run."""
    digest = hashlib.sha256(json.dumps({**asdict(config), "epochs_trained": epochs}, sort_keys=True).encode())
    for tensor in [*fresh.state_dict().values(), train.x, train.y]:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return Path(store) / f"run-{digest.hexdigest()[:20]}.pt"


def check_early_runs(recipe: TrainingConfig, epochs: int, runs: int) -> None:
    """A ``ValueError`` unless runs >= 1 and 0 <= epochs <= the recipe's epochs."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if not 0 <= epochs <= recipe.epochs:
        raise ValueError(f"epochs must lie in [0, {recipe.epochs}] (the recipe's epochs), got {epochs}")


def early_model(
    model: nn.Module,
    train: TensorData,
    run: int,
    *,
    recipe: TrainingConfig,
    epochs: int,
    seed: int,
    device: str,
    store: str | Path | None = None,
) -> tuple[nn.Module, bool]:
    """Run ``run`` of ``early_models``: (a fresh initialisation (seed ``seed + run``) trained ``epochs`` epochs,
    whether it was read from ``store``), in eval mode."""
    from dataset_pruning.tensor_files import load_tensors, save_tensors  # tensor_files imports scoring

    fresh = reinitialised(model, seed + run)
    read = False
    if epochs > 0:
        config = TrainingConfig(**{**asdict(recipe), "seed": recipe.seed + seed + run, "device": device})
        kept = None if store is None else _run_file(store, fresh, train, config, epochs)
        read = kept is not None and kept.is_file()
        if read:
            fresh.load_state_dict(load_tensors(kept))
        else:
            _train_for(fresh, train, config, epochs)
            if kept is not None:
                save_tensors({name: value.detach().cpu() for name, value in fresh.state_dict().items()}, kept)
    return fresh.eval(), read


def early_models(
    model: nn.Module,
    train: TensorData,
    *,
    recipe: TrainingConfig,
    epochs: int,
    runs: int,
    seed: int,
    device: str,
    store: str | Path | None = None,
) -> Iterator[tuple[nn.Module, bool]]:
    """``runs`` (model, read from the store) pairs: run k is a fresh initialisation (seed ``seed + k``) trained
    ``epochs`` epochs (0: at init).

    store : a folder where each trained run's weights are written and read back instead of retrained: EL2N and
    GraNd with the same runs, recipe and seed train the same models, and share them through the same store.
    """
    check_early_runs(recipe, epochs, runs)
    for k in range(runs):
        yield early_model(model, train, k, recipe=recipe, epochs=epochs, seed=seed, device=device, store=store)


def _train_for(model: nn.Module, train: TensorData, config: TrainingConfig, epochs: int) -> None:
    """``fit`` stopped after ``epochs`` epochs of ``config``'s schedule."""

    def stop(epoch: int, _model: nn.Module) -> None:
        if epoch + 1 >= epochs:
            raise _StopTraining

    try:
        fit(model, train, config, on_epoch_end=stop, progress=False)
    except _StopTraining:
        pass


def mean_over_early_runs(
    score_run: Callable[[nn.Module], torch.Tensor],
    model: nn.Module,
    train: TensorData,
    *,
    trace: Any,
    recipe: TrainingConfig | dict | None,
    epochs: int | None,
    runs: int,
    seed: int,
    device: str,
    progress: bool,
    desc: str,
    store: str | Path | None = None,
) -> tuple[torch.Tensor, dict[str, int]]:
    """The mean over ``runs`` early models of ``score_run(model) -> (n,)``, float64, and the info {runs, epochs,
    runs_read (from the store)}. ``epochs`` defaults to 10% of the recipe's; ``store``: see ``early_models``."""
    config, epochs = early_schedule(recipe, trace, epochs)
    models = early_models(model, train, recipe=config, epochs=epochs, runs=runs, seed=seed, device=device,
                          store=store)
    scored = ((score_run(run), stored) for run, stored in tqdm(models, total=runs, desc=desc, disable=not progress,
                                                                leave=False))
    return mean_of_runs(scored, len(train), epochs)


RunScore = Callable[..., torch.Tensor]  # (run, train, *, batch_size, device) -> (n,) float64


def early_run_scorer(name: str, score_run: RunScore, *, batch_size: int, desc: str) -> Scorer:
    """Register the scalar scorer ``name``: the mean over ``runs`` early runs of ``score_run(run, train,
    batch_size=..., device=...) -> (n,)``, the HIGHEST kept. EL2N and GraNd differ only in ``score_run`` (and the
    default batch size), so their options are declared once, here."""

    def score(
        model: torch.nn.Module,
        train: TensorData,
        *,
        trace=None,
        runs: int = 10,
        epochs: Annotated[int | None, Field(ge=0)] = None,  # 0: scored at initialisation
        recipe: TrainingConfig | dict | None = None,
        batch_size: int = batch_size,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
        store: str | Path | None = None,
    ) -> SampleScores:
        """scores : Tensor of shape (n_samples,), keep highest. ``epochs`` defaults to 10% of the recipe's.
        ``store``: a folder that keeps the short runs' weights (``early_models``; shared by EL2N and GraNd)."""
        scores, info = mean_over_early_runs(
            lambda run: score_run(run, train, batch_size=batch_size, device=device),
            model, train, trace=trace, recipe=recipe, epochs=epochs, runs=runs, seed=seed, device=device,
            progress=progress, desc=desc, store=store,
        )
        return SampleScores(scores.float(), method=name, keep="highest", info=info)

    # named as the module attribute it is bound to, so that it pickles by reference like a plain function
    score.__name__ = score.__qualname__ = name
    score.__module__ = score_run.__module__
    return scorer(name, output="scalar")(score)


def mean_of_runs(scored: Iterable[tuple[torch.Tensor, bool]], n: int,
                 epochs: int) -> tuple[torch.Tensor, dict[str, int]]:
    """The mean of the runs' scores (each (n,), added in run order into float64) and the info {runs, epochs,
    runs_read}, from (scores, read from the store) per run: one process or Dask workers (scoring/sharded.py)."""
    total = torch.zeros(n, dtype=torch.float64)
    runs = read = 0
    for scores, stored in scored:
        total += scores
        runs += 1
        read += stored
    return total / runs, {"runs": runs, "epochs": epochs, "runs_read": read}


__all__ = ["check_early_runs", "default_epochs", "early_model", "early_models", "early_run_scorer", "early_schedule",
           "mean_of_runs",
           "mean_over_early_runs", "training_recipe"]
