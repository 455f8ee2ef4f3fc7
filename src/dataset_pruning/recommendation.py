"""``influence_scoring.method: recommended`` (the default): the selection measured best at the run's removal
ratio, chosen from the ``recommend.by_ratio`` table (conf/base/parameters_recommend.yml; docs/selection.md, "Which
method at which ratio") and written into the parameters before anything runs.

``resolve(params)`` is called by the project's config loader on every read of the parameters, so the nodes, the
hooks, MLflow's logged parameters and run name all see the method actually run: ``influence_scoring.method`` and
``options`` become the entry's scorer and options, ``optimization_selection`` takes the entry's selection keys
(e.g. ``rule: beta``), ``erm_training.trace`` records what the scorer reads, and ``influence_scoring.recommended``
records the choice ({ratio, method, why}). Eq. 3 (``problem: generalization``, no ratio) is the paper's method on
the last-layer S. Naming any other method keeps every block as given.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from dataset_pruning.config import RecommendParams
from dataset_pruning.scoring import trace_options
from dataset_pruning.scoring.held_out import HELD_OUT  # the scorer that measures candidates on a held-out split

RECOMMENDED = "recommended"
RECORD = "recommended"  # influence_scoring.recommended: what was chosen and why (a record, not a setting)


@dataclass(frozen=True)
class Choice:
    """One row of the table: the method (a sweep method's form: scorer, its options, selection keys) and why."""

    method: str
    scorer: str
    options: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    why: str = ""


EQ3 = Choice("eq3", "last_layer_influence", why="Eq. 3 (a budget eps, no ratio): the paper's method on S")


def choose(ratio: float | None, by_ratio: list[dict[str, Any]]) -> Choice:
    """The first entry of ``by_ratio`` whose ``up_to`` is >= ``ratio`` (the removed fraction); EQ3 for no ratio.

    by_ratio : [{up_to, method, scorer, options?, selection?, why}], ``up_to`` increasing, the last one 1.0."""
    if ratio is None:
        return EQ3
    if not by_ratio:
        raise ValueError("recommend.by_ratio is empty: give at least one {up_to, method, scorer} entry")
    for entry in by_ratio:
        if ratio <= entry["up_to"]:
            return Choice(entry["method"], entry["scorer"], dict(entry.get("options") or {}),
                          dict(entry.get("selection") or {}), entry.get("why", ""))
    raise ValueError(f"recommend.by_ratio ends at up_to {by_ratio[-1]['up_to']}, below the ratio {ratio}: end it "
                     "with up_to: 1.0")


def run_form(method: dict[str, Any], ratio: float | None, budget: str, methods: dict[str, Any]) -> dict[str, Any]:
    """``method`` ({scorer, options, selection}) as a run at ``ratio`` with retraining ``budget`` runs it: a
    ``held_out_choice`` gets its candidates' definitions from ``methods`` (sweep.methods), the ratio and the
    budget; any other method is returned as it is."""
    if method["scorer"] != HELD_OUT:
        return method
    options = dict(method.get("options") or {})
    known = {name: dict(methods[name]) for name in options.get("candidates") or () if name in methods}
    options.update(methods=known, ratio=ratio, budget=budget)
    return {**method, "options": options}


def scorers_run(method: dict[str, Any]) -> list[str]:
    """The scorers ``method`` (in ``run_form``) runs, for the ERM trace they read: a held_out_choice's candidates'
    too."""
    inner = (method.get("options") or {}).get("methods") or {} if method["scorer"] == HELD_OUT else {}
    return [method["scorer"], *(candidate["scorer"] for candidate in inner.values())]


def resolve(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` (all parameter blocks) with ``influence_scoring.method: recommended`` replaced by the chosen
    method (module docstring), and a held_out_choice (chosen or named) in ``run_form``; unchanged otherwise."""
    scoring = params.get("influence_scoring") or {}
    if scoring.get("method") not in (RECOMMENDED, HELD_OUT):
        return params
    out = copy.deepcopy(params)
    selection = out.setdefault("optimization_selection", {})
    if scoring["method"] == RECOMMENDED:
        if scoring.get("options"):
            raise ValueError("influence_scoring.options set with method 'recommended', which picks the method and "
                             "its options by ratio: name the method (e.g. influence_scoring.method=dual) to give "
                             "options")
        ratio = _ratio(selection)
        valid = ratio is None or (isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and 0 < ratio < 1)
        try:
            table = [entry.model_dump() for entry in
                     RecommendParams.model_validate(out.get("recommend") or {}).by_ratio]
        except ValidationError:
            valid = False
        # a bad ratio or table: the paper's method, so that parameter validation reports the ratio or the table
        choice = choose(ratio, table) if valid else EQ3
        out["influence_scoring"] = {**scoring, "method": choice.scorer, "options": choice.options,
                                    RECORD: {"ratio": ratio, "method": choice.method, "why": choice.why}}
        selection.update(copy.deepcopy(choice.selection))
    chosen = out["influence_scoring"]
    budget, methods = (out.get("retraining") or {}).get("budget", "epochs"), (out.get("sweep") or {}).get("methods")
    method = run_form({"scorer": chosen["method"], "options": dict(chosen.get("options") or {})}, _ratio(selection),
                      budget, methods or {})
    chosen["options"] = method["options"]
    erm = out.setdefault("erm_training", {})
    erm["trace"] = trace_options(scorers_run(method), erm.get("trace") or {})
    return out


def _ratio(selection: dict[str, Any]) -> Any:
    """The run's removal ratio (None for Eq. 3, which has a budget eps instead)."""
    return selection.get("ratio") if selection.get("problem", "cardinality") == "cardinality" else None


def settings(block: str, values: Any) -> Any:
    """Parameter block ``values`` without the choice's record (``influence_scoring.recommended``): what a run's
    outputs depend on, e.g. when the lineage check compares an earlier run's blocks with this run's."""
    if block == "influence_scoring" and isinstance(values, dict):
        return {key: value for key, value in values.items() if key != RECORD}
    return values


__all__ = ["Choice", "HELD_OUT", "RECOMMENDED", "RECORD", "choose", "resolve", "run_form", "scorers_run", "settings"]
