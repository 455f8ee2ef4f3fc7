"""The sweep's four kinds of work, each a plain function of specs and a cache folder (run in-process or on Dask
workers). Each one first looks for its finished result under ``cache/<key>/`` and returns it without computing;
results are written atomically, so an interrupted sweep leaves finished pieces whole and nothing half-written.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset_pruning import steps
from dataset_pruning.data import kept_indices, load_dataset
from dataset_pruning.data.base import check_prunable
from dataset_pruning.experiments.grid import CellSpec, ErmSpec, ScoreSpec, SelectionSpec
from dataset_pruning.runtime import limit_threads
from dataset_pruning.scoring import SampleScores, score_samples
from dataset_pruning.scoring.influence_norm import influence_norm
from dataset_pruning.selection.choose import select_for_method
from dataset_pruning.selection.tuning import validation_split
from dataset_pruning.tensor_files import load_tensors, save_array, save_tensors, write_atomically
from dataset_pruning.training import ModelSpec, TrainingConfig, evaluate, load_model, retraining_recipe, save_model

DONE = "result.json"


def early_runs_folder(cache: str, erm: ErmSpec) -> Path:
    """Where the short runs of EL2N and GraNd on one ERM are kept (their ``store``)."""
    return Path(cache) / "early" / erm.key


def finished_result(folder: Path) -> dict[str, Any] | None:
    """The result a finished task left in ``folder``, or None."""
    path = folder / DONE
    return json.loads(path.read_text()) if path.is_file() else None


def _finish(folder: Path, result: dict[str, Any], started: float) -> dict[str, Any]:
    """Write ``result`` with the task's whole wall time since ``started`` (``task_seconds``: what the worker was
    busy with, loading and saving included); return it marked ``computed``."""
    result = {**result, "task_seconds": time.perf_counter() - started}
    write_atomically(folder / DONE, lambda temporary: Path(temporary).write_text(json.dumps(result, indent=1)))
    return {**result, "computed": True}


class AccuracyCurve:
    """An ``on_epoch_end`` callback: [epoch, training seconds so far (its own evaluations excluded), test accuracy]
    after every epoch, for the time and epochs to reach a target accuracy."""

    def __init__(self, test, device: str) -> None:
        self.test, self.device, self.points, self.evaluating = test, device, [], 0.0
        self.start = time.perf_counter()

    def __call__(self, epoch: int, model) -> None:
        paused = time.perf_counter()
        accuracy = evaluate(model, self.test, device=self.device)["accuracy"]
        self.points.append([epoch + 1, paused - self.start - self.evaluating, accuracy])
        model.train()
        self.evaluating += time.perf_counter() - paused

    def training_seconds(self) -> float:
        return time.perf_counter() - self.start - self.evaluating


def _data(spec: ErmSpec):
    """(training set, evaluation set): the test set, or with ``validation`` a stratified held-out part of the
    training set (seeded by the data set's seed, the same for every cell seed) and the rest for training."""
    data = spec.data
    train, test = load_dataset(data["dataset"], root=data["root"], seed=data["seed"], **data["options"])
    check_prunable(train, test)
    if not data.get("validation"):
        return train, test
    fit_part, held_out = validation_split(train.y.numpy(), data["validation"], seed=data["seed"] or 0)
    return train.subset(torch.as_tensor(fit_part)), train.subset(torch.as_tensor(held_out))


def run_erm(spec: ErmSpec, cache: str, threads: int = 1, force: bool = False) -> dict[str, Any]:
    """ERM on the full training set, its trace and last-layer S; {key, n, full_test_loss, full_test_accuracy,
    seconds, computed}."""
    folder = Path(cache) / "erm" / spec.key
    if not force and (done := finished_result(folder)) is not None:
        return {**done, "computed": False}
    started = time.perf_counter()
    with limit_threads(threads):
        train, test = _data(spec)
        model_spec = ModelSpec(spec.model["name"], train.input_shape, train.num_classes, spec.model.get("options", {}))
        recipe = TrainingConfig(**spec.recipe)
        curve = AccuracyCurve(test, recipe.device)
        model, trace = steps.train_erm(train, model_spec, recipe, spec.trace, progress=False,
                                       on_epoch_end=curve if spec.track_accuracy else None)
        seconds = curve.training_seconds()
        influence = score_samples("last_layer_influence", model, train,
                                  **steps.run_options("last_layer_influence", spec.influence, recipe, progress=False))
        full = evaluate(model, test, device=recipe.device)
    save_tensors(save_model(model, model_spec), folder / "model.pt")
    save_tensors(trace, folder / "trace.pt")
    save_array(influence.values.numpy(), folder / "influence.npy")
    return _finish(folder, {"key": spec.key, "n": len(train), "full_test_loss": full["loss"],
                            "full_test_accuracy": full["accuracy"], "erm_seconds": seconds,
                            "full_accuracy_curve": curve.points}, started)


def run_score(spec: ScoreSpec, erm: dict[str, Any], cache: str, threads: int = 1, force: bool = False,
              after: Any = None) -> dict:
    """The scorer's values on the ERM model (last_layer_influence: S itself, nothing recomputed).

    Scorers with a ``store`` option (EL2N, GraNd) keep their short runs under ``cache/early/<ERM key>``, so the
    second of them on an ERM reads the first one's runs; ``after`` (ignored) is that first task, which the sweep
    passes to make Dask run them one after the other."""
    folder = Path(cache) / "scores" / spec.key
    if not force and (done := finished_result(folder)) is not None:
        return {**done, "computed": False}
    started = time.perf_counter()
    if spec.scorer == "last_layer_influence":
        return _finish(folder, {"key": spec.key, "keep": None, "score_seconds": 0.0, "same_as_S": True}, started)
    erm_folder = Path(cache) / "erm" / spec.erm.key
    if _norms_of_erm_influence(spec):  # ||S_i|| of the S the ERM task stored: the same numbers, not solved again
        start = time.perf_counter()
        influence = torch.from_numpy(np.load(erm_folder / "influence.npy", allow_pickle=False))
        scores = SampleScores(influence.double().norm(dim=1).float(), method=spec.scorer, keep="highest",
                              info={"same_as": "influence_vectors"})
    else:
        with limit_threads(threads):
            train, _ = _data(spec.erm)
            model, trace = load_model(load_tensors(erm_folder / "model.pt")), load_tensors(erm_folder / "trace.pt")
            options = steps.run_options(spec.scorer, spec.options, TrainingConfig(**spec.erm.recipe), progress=False,
                                        store=str(early_runs_folder(cache, spec.erm)))
            start = time.perf_counter()
            scores = score_samples(spec.scorer, model, train, trace=trace, **options)
    seconds = time.perf_counter() - start
    save_tensors(scores.as_arrays(), folder / "scores.pt")
    return _finish(folder, {"key": spec.key, "keep": scores.keep, "score_seconds": seconds, "same_as_S": False},
                   started)


def _norms_of_erm_influence(spec: ScoreSpec) -> bool:
    """Whether the scorer is influence_norm with the options the ERM task computed its last-layer S with (the
    keys influence_norm has; LiSSA's block only counts when either side uses LiSSA): its values are then ||S_i||."""
    if spec.scorer != "influence_norm":
        return False
    defaults = {name: p.default for name, p in inspect.signature(influence_norm).parameters.items()
                if p.default is not inspect.Parameter.empty and name not in ("progress", "indices", "trace")}
    if not set(spec.options) | set(spec.erm.influence) <= set(defaults):
        return False
    mine, erm = {**defaults, **spec.options}, {**defaults, **spec.erm.influence}
    if mine["hessian"] == erm["hessian"] == "exact":  # the exact path never reads the LiSSA block
        del mine["lissa"], erm["lissa"]
    return mine == erm


def run_selection(spec: SelectionSpec, score: dict, cache: str, threads: int = 1, force: bool = False,
                  matched: dict | None = None) -> dict[str, Any]:
    """The removed set of one method at one ratio or eps (``removed.npy``); {key, removed, eps, eps_over_n,
    m_over_n2, selection_seconds}. ``matched``: the selection whose removal count a random cell copies."""
    folder = Path(cache) / "selections" / spec.key
    if not force and (done := finished_result(folder)) is not None:
        return {**done, "computed": False}
    started = time.perf_counter()
    influence = np.load(Path(cache) / "erm" / spec.score.erm.key / "influence.npy", allow_pickle=False)
    stored = None if score["same_as_S"] else load_tensors(Path(cache) / "scores" / spec.score.key / "scores.pt")
    with limit_threads(threads):
        train, _ = _data(spec.score.erm)
        selection = dict(spec.selection)
        if matched is not None:  # as many samples as the matched cell removed, by this cell's (random) score
            selection["ratio"] = matched["removed"] / len(train)
        scores, keep, hard, columns = (None, None, None, None) if stored is None else (
            stored["values"], stored["keep"], stored["info"].get("hard"), stored.get("columns"))
        removed, chosen = select_for_method(influence, scores, keep, labels=train.y.numpy(), hard=hard,
                                            columns=columns, **selection)
    save_array(removed, folder / "removed.npy")
    return _finish(folder, {"key": spec.key, "removed": int(len(removed)), "eps": chosen["eps"],
                            "eps_over_n": chosen["eps_over_n"], "m_over_n2": chosen["m_over_n2"],
                            "selection_seconds": chosen["seconds"]}, started)


def run_cell(spec: CellSpec, erm: dict, score: dict, selected: dict, cache: str, threads: int = 1,
             force: bool = False) -> dict[str, Any]:
    """Retrain without the selected samples, measure: one row of the sweep's table (the metrics of
    ``pruning_metrics`` and more)."""
    folder = Path(cache) / "cells" / spec.key
    if not force and (done := finished_result(folder)) is not None:
        return {**done, "computed": False}
    started = time.perf_counter()
    removed = np.load(Path(cache) / "selections" / selected["key"] / "removed.npy", allow_pickle=False)
    with limit_threads(threads):
        train, test = _data(spec.score.erm)
        labels = train.y.numpy()
        keep = kept_indices(len(train), removed)
        recipe = retraining_recipe(TrainingConfig(**spec.score.erm.recipe), len(train), spec.budget)
        model_spec = ModelSpec(spec.retrain_model["name"], train.input_shape, train.num_classes,
                               spec.retrain_model.get("options", {}))
        curve = AccuracyCurve(test, recipe.device)
        model, history = steps.retrain(train, removed, model_spec, recipe, progress=False,
                                       on_epoch_end=curve if spec.track_accuracy else None)
        retrain_seconds = curve.training_seconds()
        pruned = evaluate(model, test, device=recipe.device)
    kept_per_class = np.bincount(labels[keep], minlength=train.num_classes)
    sizes = np.bincount(labels, minlength=train.num_classes)
    full = {"loss": erm["full_test_loss"], "accuracy": erm["full_test_accuracy"]}
    metrics = steps.pruning_metrics(len(train), removed, full, pruned,
                                    {k: selected[k] for k in ("eps", "eps_over_n", "m_over_n2")})
    row = {
        "cell_key": spec.key, **{k: v for k, v in spec.tags.items()},
        "n": len(train), "removed": int(len(removed)), "ratio_removed": metrics.pop("ratio"), **metrics,
        "retrain_steps": recipe.steps or recipe.epochs * -(-len(keep) // recipe.batch_size),
        "retrain_seconds": retrain_seconds, "selection_seconds": selected["selection_seconds"],
        "score_seconds": score["score_seconds"], "erm_seconds": erm["erm_seconds"],
        **{f"{kind}_task_seconds": part.get("task_seconds") for kind, part in
           (("erm", erm), ("score", score), ("selection", selected))},
        "final_train_loss": history[-1],
        "min_class_kept_fraction": float((kept_per_class / np.maximum(sizes, 1)).min()),
        "kept_per_class": kept_per_class.tolist(),
        "accuracy_curve": curve.points, "full_accuracy_curve": erm["full_accuracy_curve"],
    }
    save_array(removed, folder / "removed.npy")
    return _finish(folder, row, started)
