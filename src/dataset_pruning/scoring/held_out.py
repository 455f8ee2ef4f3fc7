"""The choice among candidate selections measured on a held-out part of the run's own training set (issue 26).

Above 50 % removed no single method held on all three data sets measured (docs/selection.md, "The default"): the
hard-end scores (TDDS, Eq. 4) win where the kept set is still large for the data set and collapse where it is not,
and where that happens depends on the data. So the default there measures instead of guessing: a stratified
``validation`` fraction V of the training set is held out, each candidate (a sweep method: scorer, options,
selection keys; scalar scorers only) selects from its scores on the rest A (at ``ratio``, or with ``keep_count``
as many samples as the run keeps of the whole set), a fresh model (the ERM architecture, recipe and seed, the
run's retraining ``budget``) is trained on that kept part of A, and its accuracy on V is the candidate's
(``repeats``, or as many splits as ``min_held_out`` asks of a small data set: averaged over several splits).
The winner (the best accuracy; ties: the first listed; with ``switch_z`` the first listed unless the best beats it
by more than that many standard errors, McNemar's) then selects at ``ratio`` on the whole training set.

The scores are every candidate's own, computed once on the ERM model, which was trained on all samples (V
included): V is never trained on by the models compared, only seen by the model whose scores rank A. Cost: the
candidates' scorers plus one training per candidate and split on the kept part of A (epochs budget, keep_count:
about 0.1 of one ERM each at 90 % removed).

The output is a scalar score whose top n - m entries are exactly the winner's kept set (m = round(ratio * n)),
ordered within it and within the removed part by the winner's own score: the score rule at ``ratio`` (the
pipeline's default selection) removes exactly the winner's removed set. ``info['held_out']`` records the
accuracies and the choice. Shapes: train of n samples; values (n,), float32; the HIGHEST are kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from dataset_pruning.data.base import TensorData, kept_indices
from dataset_pruning.scoring.base import SCORERS, SampleScores, run_options, score_samples, scorer, scorer_output
from dataset_pruning.selection.rules import select_by_rule
from dataset_pruning.selection.tuning import validation_split
from dataset_pruning.training import ModelSpec, TrainingConfig, fit, predict_logits, retraining_recipe

HELD_OUT = "held_out_choice"  # the scorer's registered name
SELECTION_KEYS = ("class_balanced", "rule", "rule_options")  # what a candidate's selection may set here


def candidate_problems(candidates: list[str], methods: dict[str, dict[str, Any]]) -> list[str]:
    """Why held_out_choice cannot compare ``candidates`` (names of ``methods``, sweep.methods' definitions); empty
    when it can. Checked with the parameters, before any training, and by the scorer itself."""
    problems = []
    missing = [name for name in candidates if name not in methods]
    if missing:
        problems.append(f"candidates {missing} are not defined in sweep.methods")
    defined = [name for name in candidates if name in methods]
    vectors = [name for name in defined if methods[name]["scorer"] not in SCORERS
               or scorer_output(methods[name]["scorer"]) != "scalar"]
    if vectors:
        problems.append(f"it compares scalar scorers only; {vectors} are not")
    for name in defined:
        unknown = sorted(set(methods[name].get("selection") or {}) - set(SELECTION_KEYS))
        if unknown:
            problems.append(f"candidate {name!r}'s selection may set {', '.join(SELECTION_KEYS)}, not "
                            f"{', '.join(unknown)}")
    return problems


def select_scalar(scores: SampleScores, ratio: float, labels: np.ndarray, selection: dict[str, Any],
                  seed: int) -> np.ndarray:
    """The removed indices (int64 (m,), sorted) of a scalar ``scores`` at ``ratio`` under a candidate's
    ``selection`` keys (SELECTION_KEYS, ``candidate_problems``)."""
    columns = {name: column.numpy() for name, column in scores.columns.items()}
    return select_by_rule(scores.values.numpy(), scores.keep, ratio, rule=selection.get("rule", "score"),
                          labels=labels, class_balanced=selection.get("class_balanced", False),
                          hard=scores.info.get("hard"), seed=seed, options=selection.get("rule_options"),
                          columns=columns)


def mcnemar_z(right: torch.Tensor, reference: torch.Tensor) -> float:
    """McNemar's z of ``right``'s advantage over ``reference`` (bool (k,): which samples each classifies right):
    (c - b) / sqrt(b + c), c (b) the samples only ``right`` (only ``reference``) gets right; 0 when none differ."""
    c, b = int((right & ~reference).sum()), int((reference & ~right).sum())
    return (c - b) / (b + c) ** 0.5 if b + c else 0.0


def as_kept_first(scores: SampleScores, removed: np.ndarray) -> torch.Tensor:
    """(n,) float32 scores whose top n - len(removed) are the samples not in ``removed``: 1 + the normalised rank
    of ``scores`` at its kept end for those, the normalised rank alone for the removed (ties: by index)."""
    values = scores.values.double().numpy()
    oriented = values if scores.keep == "highest" else -values
    rank = np.empty(len(values))
    rank[np.argsort(oriented, kind="stable")] = np.arange(len(values)) / len(values)
    kept = np.ones(len(values), dtype=bool)
    kept[removed] = False
    return torch.from_numpy(rank + kept).float()


@scorer(HELD_OUT, output="scalar")
def held_out_choice(
    model: torch.nn.Module,
    train: TensorData,
    trace: Any = None,
    *,
    candidates: Annotated[list[str], Field(min_length=1)],
    methods: dict[str, dict[str, Any]] | None = None,
    ratio: Annotated[float, Field(gt=0, lt=1)] | None = None,
    budget: Literal["epochs", "steps"] = "epochs",
    validation: Annotated[float, Field(gt=0, lt=1)] = 0.2,
    repeats: Annotated[int, Field(ge=1)] = 1,
    min_held_out: Annotated[int, Field(ge=0)] = 0,
    keep_count: bool = False,
    switch_z: Annotated[float, Field(ge=0)] = 0.0,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> SampleScores:
    """The winner's selection at ``ratio`` as scores (module docstring). ``candidates``: names of ``methods``
    ({name: {scorer, options?, selection?}}, the sweep's ``sweep.methods``); the run fills in ``methods``,
    ``ratio`` (the run's removal ratio) and ``budget`` (its retraining budget): recommendation.run_form.
    ``repeats``: held-out splits (seeds seed, seed + 1, ...), each with its own initialisation; the accuracies are
    averaged (a less noisy choice on small data sets, ``repeats`` x the trainings). ``min_held_out``: more splits
    than ``repeats`` until the held-out parts hold this many samples in all (1,000: 4 splits of digits' 1,347, 2 of
    MNIST-1D's 4,000, 1 of Fashion-MNIST's 60,000), so that the choice is as reliable on small data sets as on large
    ones, where one split already holds thousands and the trainings are the costly ones. ``keep_count``: the candidates
    keep as many samples of the 80 % part as the run keeps of the whole set (the kept set's size, not its fraction,
    sets which end of a score wins), else the same fraction. ``switch_z``: the best candidate replaces the first
    listed only if McNemar's z of its advantage on the held-out samples, (c - b) / sqrt(b + c) with c (b) the samples
    only it (only the first) classifies right, pooled over the splits, exceeds ``switch_z`` (1.64: one-sided 5 %);
    0: the best accuracy wins. A held-out part of a few hundred samples cannot separate candidates a point apart."""
    if ratio is None:
        raise ValueError("held_out_choice needs the removal ratio (optimization_selection.ratio, which the run gives)")
    if trace is None:
        raise ValueError("held_out_choice retrains with the ERM recipe and needs the ERM trace that records it")
    methods = methods or {}
    if problems := candidate_problems(candidates, methods):
        raise ValueError("held_out_choice: " + "; ".join(problems))
    recipe = TrainingConfig(**trace.config)
    spec = ModelSpec(**{**trace.spec, "input_shape": tuple(trace.spec["input_shape"])})
    labels = train.y.numpy()
    scores = {name: score_samples(methods[name]["scorer"], model, train, trace=trace,
                                  **run_options(methods[name]["scorer"], methods[name].get("options") or {}, recipe,
                                                device=device, seed=seed, progress=progress))
              for name in candidates}
    right: dict[str, list[torch.Tensor]] = {name: [] for name in candidates}  # (held,) bool per split
    split_seed, evaluated = seed, 0
    # more than one split (repeats, min_held_out): other splits and initialisations, averaged
    while split_seed < seed + repeats or evaluated < min_held_out:
        part, held = validation_split(labels, validation, split_seed)
        part_data, held_data = train.subset(torch.from_numpy(part)), train.subset(torch.from_numpy(held))
        short = retraining_recipe(replace(recipe, seed=split_seed), len(part), budget)
        # keep_count: keep as many samples of the part as the run keeps of the whole set, not the same fraction
        inner = 1.0 - (1.0 - ratio) * len(labels) / len(part) if keep_count else ratio
        if inner <= 0:
            raise ValueError(f"held_out_choice keep_count: the run keeps {1 - ratio:.0%} of the data, more than the "
                             f"{1 - validation:.0%} left beside the held-out part; lower validation or keep_count: false")
        for name in candidates:
            own = scores[name]
            part_scores = SampleScores(own.values[part], name, own.keep, own.info,
                                       {key: column[part] for key, column in own.columns.items()})
            removed = select_scalar(part_scores, inner, labels[part], methods[name].get("selection") or {},
                                    split_seed)
            fresh = spec.build(seed=split_seed)
            fit(fresh, part_data.subset(torch.from_numpy(kept_indices(len(part), removed))), short,
                progress=progress, desc=f"held-out choice: {name}")
            logits = predict_logits(fresh, held_data.x, device=short.device)
            right[name].append(logits.argmax(1) == held_data.y)
        split_seed, evaluated = split_seed + 1, evaluated + len(held)
    accuracy = {name: float(np.mean([float(split.float().mean()) for split in splits]))  # the splits' mean
                for name, splits in right.items()}
    best = max(candidates, key=lambda name: accuracy[name])  # the first of equals
    z = mcnemar_z(torch.cat(right[best]), torch.cat(right[candidates[0]]))
    chosen = candidates[0] if switch_z > 0 and z <= switch_z else best
    removed = select_scalar(scores[chosen], ratio, labels, methods[chosen].get("selection") or {}, seed)
    info = {"held_out": {"chosen": chosen, "accuracy": accuracy, "validation": validation, "repeats": repeats,
                         "min_held_out": min_held_out, "splits": split_seed - seed, "keep_count": keep_count,
                         "best": best, "z": z, "switch_z": switch_z,
                         "ratio": ratio, "budget": budget}, "chosen_info": scores[chosen].info}
    return SampleScores(as_kept_first(scores[chosen], removed), "held_out_choice", "highest", info)
