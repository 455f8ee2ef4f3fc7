"""The sweep's grid: data set x model x method x (ratio | eps) x seed x retraining budget, as plain specs.

A cell is one retraining. Four kinds of work, each done once and shared by every cell that needs it:
- ``ErmSpec``: ERM on one (data set, model, seed), with the training trace its methods need and the last-layer S;
- ``ScoreSpec``: one scorer with its options on one ERM;
- ``SelectionSpec``: one removed set (a method's rule or solver at a ratio or eps) from one score, shared by the
  cells that retrain on it with another budget or model (the Eq. 3 / Eq. 4 solvers take seconds per selection);
- ``CellSpec``: one selection retrained with one model and budget.
Every spec has a ``key``: a hash of everything that determines its result, under which the cache keeps it, so a
finished piece is found again on a re-run (and anything that changes its inputs gets a new key).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from dataset_pruning.recommendation import RECOMMENDED, choose, run_form, scorers_run
from dataset_pruning.scoring import scorer_output, trace_options


def spec_key(kind: str, payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class _Spec:
    """A spec's ``key``: the hash of its fields (a nested spec by its own key; fields with ``compare=False`` left
    out), under which the cache keeps its result."""

    kind = ""

    @property
    def key(self) -> str:
        payload = {f.name: getattr(self, f.name) for f in fields(self) if f.compare}
        return spec_key(self.kind, {name: value.key if isinstance(value, _Spec) else value
                                    for name, value in payload.items()})


@dataclass(frozen=True)
class ErmSpec(_Spec):
    kind = "erm"
    data: dict[str, Any]  # {dataset, root, seed, options}: load_dataset's arguments (+ validation: a fraction)
    model: dict[str, Any]  # {name, options}
    recipe: dict[str, Any]  # TrainingConfig fields (seed = the cell seed)
    trace: dict[str, Any]  # TraceRecorder options
    influence: dict[str, Any]  # last_layer_influence options
    track_accuracy: bool = False  # test accuracy after every epoch (the efficiency preset)


@dataclass(frozen=True)
class ScoreSpec(_Spec):
    kind = "score"
    erm: ErmSpec
    scorer: str
    options: dict[str, Any]


@dataclass(frozen=True)
class SelectionSpec(_Spec):
    kind = "selection"
    score: ScoreSpec
    selection: dict[str, Any]  # select_for_method's keyword arguments (ratio or eps included)
    matched: str | None = None  # the cell whose removal count this (random) selection copies


@dataclass(frozen=True)
class CellSpec(_Spec):
    kind = "cell"
    score: ScoreSpec
    method: str
    selection: dict[str, Any]  # select_for_method's keyword arguments (ratio or eps included)
    retrain_model: dict[str, Any]
    budget: str  # epochs | steps
    track_accuracy: bool = False  # test accuracy after every retraining epoch (the efficiency preset)
    matched: str | None = None  # random removal of as many samples as this other cell removed (Theorem 1)
    tags: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def selected(self) -> SelectionSpec:
        """The removed set this cell retrains without (shared with the cells of other budgets and models)."""
        return SelectionSpec(self.score, self.selection, self.matched)


def _selected_by(scorer: str, selection: dict[str, Any]) -> str:
    """The solver for vectors under the plain rule, else the rule (``score_rule``, ``ccs``, ...)."""
    rule = selection.get("rule", "score")
    if scorer_output(scorer) == "vector" and rule == "score":
        return selection["solver"]
    return "score_rule" if rule == "score" else rule


def expand_grid(preset: dict[str, Any], methods: dict[str, dict[str, Any]], base: dict[str, Any]) -> list[CellSpec]:
    """Every cell of ``preset`` (a validated ``SweepPreset`` as a dict), in a stable order.

    ``methods`` maps method names to {scorer, options, selection}; ``base`` holds the pipeline's blocks (ingest,
    erm_training, influence_scoring, optimization_selection) whose values every cell starts from.
    """
    ingest, erm, selection_base = base["ingest"], base["erm_training"], base["optimization_selection"]

    def at(name: str, value: float | None, budget: str) -> dict[str, Any]:
        """Method ``name`` at ratio ``value`` under retraining ``budget`` (``scorer: recommended``: the row of
        recommend.by_ratio there), as ``run_form`` runs it."""
        method = methods[name]
        if method["scorer"] == RECOMMENDED:
            choice = choose(value, base["recommend"]["by_ratio"])
            method = {"scorer": choice.scorer, "options": choice.options, "selection": choice.selection}
        return run_form(method, value, budget, methods)

    values = sorted({*preset["ratios"], *preset["eps"]})
    used = [at(name, value, budget) for name in preset["methods"] for value in values for budget in preset["budgets"]]
    scorers = [scorer for method in used for scorer in scorers_run(method)]
    trace = trace_options(scorers + ["random"] * preset["theorem1_random"], erm["trace"])
    recipe_base = {**erm["training"], **(preset.get("training") or {})}
    cells: list[CellSpec] = []
    for data_name in preset["datasets"]:
        same = data_name == ingest["dataset"]
        data = {"dataset": data_name, "root": ingest["root"], "seed": ingest["seed"] if same else None,
                "options": ingest["options"] if same else {}}
        if preset.get("validation"):  # measured on a held-out part of the training set (tasks.load_split)
            data["validation"] = preset["validation"]
        for pair in preset["models"] or [{"prune": erm["model"], "retrain": erm["model"]}]:
            prune_model, retrain_model = pair["prune"], pair["retrain"]
            for seed in preset["seeds"]:
                erm_spec = ErmSpec(data, prune_model, {**recipe_base, "seed": seed}, trace,
                                   base["influence_scoring"]["influence"], preset["track_accuracy"])
                for name in preset["methods"]:
                    problem = (methods[name].get("selection") or {}).get("problem", selection_base["problem"])
                    budgets = preset["eps"] if problem == "generalization" else preset["ratios"]
                    for value in budgets:
                        for budget in preset["budgets"]:
                            method = at(name, None if problem == "generalization" else value, budget)
                            score = ScoreSpec(erm_spec, method["scorer"], method.get("options") or {})
                            chosen = {**selection_base, "seed": seed, "bound_iterations": 0,
                                      **(method.get("selection") or {}),
                                      "ratio": None if problem == "generalization" else value,
                                      "eps": value if problem == "generalization" else None}
                            tags = {"dataset": data_name, "model": prune_model["name"],
                                    "retrain_model": retrain_model["name"], "method": name,
                                    "scorer": method["scorer"],
                                    "solver": _selected_by(method["scorer"], chosen), "seed": seed,
                                    "budget": budget, "ratio": chosen["ratio"], "eps_budget": chosen["eps"],
                                    "evaluated_on": "validation" if preset.get("validation") else "test"}
                            cell = CellSpec(score, name, chosen, retrain_model, budget,
                                            preset["track_accuracy"], tags=tags)
                            cells.append(cell)
                            if problem == "generalization" and preset["theorem1_random"]:
                                random = ScoreSpec(erm_spec, "random", {})
                                same_size = {**chosen, "problem": "cardinality", "eps": None}  # m: run_cell
                                cells.append(CellSpec(random, "random_same_size", same_size,
                                                      retrain_model, budget, preset["track_accuracy"],
                                                      matched=cell.key,
                                                      tags={**tags, "method": "random_same_size",
                                                            "scorer": "random", "solver": "score_rule"}))
    return cells
