"""influence_scoring.method: recommended: the method of recommend.by_ratio at the run's ratio, resolved in the
parameters before anything runs (recommendation.py, config_loader.py), in the prune path and the sweep alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_pruning.config import validate_parameters
from dataset_pruning.config_loader import ProjectConfigLoader
from dataset_pruning.experiments.grid import expand_grid
from dataset_pruning.recommendation import EQ3, choose, resolve
from dataset_pruning.settings import CONFIG_LOADER_ARGS

CONF = Path(__file__).resolve().parents[1] / "conf"
TABLE = [
    {"up_to": 0.5, "method": "eq4", "scorer": "last_layer_influence", "why": "large kept sets"},
    {"up_to": 1.0, "method": "dual_beta", "scorer": "dual", "selection": {"rule": "beta"}, "why": "small ones"},
]


def params(ratio: float | None, method: str = "recommended", **scoring) -> dict:
    selection = {"ratio": ratio} if ratio is not None else {"problem": "generalization", "eps": 0.01, "ratio": None}
    return {"influence_scoring": {"method": method, **scoring}, "optimization_selection": selection,
            "erm_training": {"trace": {"dynamics": False}}, "recommend": {"by_ratio": TABLE}}


def test_the_first_entry_reaching_the_ratio_is_chosen():
    assert choose(0.3, TABLE).method == "eq4" and choose(0.5, TABLE).method == "eq4"
    assert choose(0.51, TABLE).method == "dual_beta" and choose(0.9, TABLE).selection == {"rule": "beta"}
    assert choose(None, TABLE) is EQ3  # Eq. 3 has no ratio: the paper's method
    with pytest.raises(ValueError, match="up_to: 1.0"):
        choose(0.9, TABLE[:1])


def test_resolve_writes_the_method_its_selection_its_trace_and_why():
    out = resolve(params(0.9))
    assert out["influence_scoring"]["method"] == "dual" and out["optimization_selection"]["rule"] == "beta"
    assert out["erm_training"]["trace"]["dynamics"] is True  # what dual reads
    assert out["influence_scoring"]["recommended"] == {"ratio": 0.9, "method": "dual_beta", "why": "small ones"}
    low = resolve(params(0.3))
    assert low["influence_scoring"]["method"] == "last_layer_influence" and "rule" not in low["optimization_selection"]
    assert resolve(params(0.9, method="tdds")) == params(0.9, method="tdds")  # a named method: untouched
    with pytest.raises(ValueError, match="name the method"):
        resolve(params(0.9, options={"epochs": 5}))


def test_the_project_loader_resolves_the_default_at_the_ratio_given():
    for ratio in (0.5, 0.9):
        loader = ProjectConfigLoader(str(CONF), runtime_params={"optimization_selection": {"ratio": ratio}},
                                     **CONFIG_LOADER_ARGS)
        p = loader["parameters"]
        chosen = choose(ratio, p["recommend"]["by_ratio"])
        assert p["influence_scoring"]["method"] == chosen.scorer
        assert p["influence_scoring"]["recommended"]["method"] == chosen.method
        validate_parameters(p)  # the resolved blocks are valid as they stand


def recommended_cells(by_ratio: list[dict], ratios: list[float], budgets: list[str], methods: dict | None = None):
    """The sweep cells of method ``recommended`` under the project's parameters with ``by_ratio`` as the table: one
    data set (MNIST-1D), one seed."""
    p = validate_parameters(ProjectConfigLoader(str(CONF), **CONFIG_LOADER_ARGS)["parameters"])
    base = {name: p[name].model_dump() for name in
            ("ingest", "erm_training", "influence_scoring", "optimization_selection")}
    base["recommend"] = {"by_ratio": by_ratio}
    preset = {"datasets": ["mnist1d"], "models": [], "methods": ["recommended"], "ratios": ratios, "eps": [],
              "seeds": [0], "budgets": budgets, "training": {}, "track_accuracy": False, "theorem1_random": False}
    return expand_grid(preset, {"recommended": {"scorer": "recommended"}, **(methods or {})}, base)


def test_a_sweep_method_recommended_runs_the_chosen_method_at_each_ratio():
    cells = recommended_cells(TABLE, [0.3, 0.9], ["epochs"])
    assert [(c.score.scorer, c.selection.get("rule")) for c in cells] == [("last_layer_influence", "score"),
                                                                         ("dual", "beta")]
    assert cells[0].score.erm.trace["dynamics"] is True  # one ERM for both: it records what dual reads
    assert {c.tags["method"] for c in cells} == {"recommended"}


def test_the_default_follows_the_table_documented_in_docs_selection():
    """docs/selection.md's "default method" table (up to / above a ratio) is what the default runs at each ratio."""
    import re

    text = (CONF.parent / "docs/selection.md").read_text().split("### The default:", 1)[1]
    rows = re.findall(r"^\| (up to|above) (\d+) % \| (\w+)", text, flags=re.M)
    assert rows, "the default's table is missing from docs/selection.md"
    for ratio in (0.1, 0.3, 0.5, 0.7, 0.9):
        documented = next(method for kind, percent, method in rows
                          if (ratio <= int(percent) / 100 if kind == "up to" else ratio > int(percent) / 100))
        loader = ProjectConfigLoader(str(CONF), runtime_params={"optimization_selection": {"ratio": ratio}},
                                     **CONFIG_LOADER_ARGS)
        assert loader["parameters"]["influence_scoring"]["recommended"]["method"] == documented, ratio


def test_the_recommend_and_tolerance_runs_are_named_by_what_they_ask():
    from dataset_pruning.hooks import run_name

    p = ProjectConfigLoader(str(CONF), **CONFIG_LOADER_ARGS)["parameters"]
    assert run_name(p, ["tolerance"]) == "tolerance·mnist1d·cnn1d·delta0.01·recommended"
    assert run_name(p, ["recommend"]).startswith("recommend·mnist1d·cnn1d·random·eq4")


def test_a_bad_table_is_reported_by_parameter_validation_not_a_traceback():
    bad = {**params(0.9), "recommend": {"by_ratio": [{"up_to": 1.0, "scorer": "herding"}]}}  # no method
    resolved = resolve(bad)
    assert resolved["influence_scoring"]["method"] == EQ3.scorer
    with pytest.raises(ValueError, match=r"recommend\.by_ratio\.0\.method: Field required"):
        validate_parameters(resolved)


HELD_OUT_TABLE = [TABLE[0], {"up_to": 1.0, "method": "held_out", "scorer": "held_out_choice",
                             "options": {"candidates": ["tdds", "herding"]}, "why": "measured"}]
SWEEP_METHODS = {"tdds": {"scorer": "tdds"}, "herding": {"scorer": "herding"}, "random": {"scorer": "random"}}


def test_a_held_out_choice_gets_the_runs_ratio_budget_candidates_and_their_trace():
    given = {**params(0.8), "recommend": {"by_ratio": HELD_OUT_TABLE}, "retraining": {"budget": "steps"},
             "sweep": {"methods": SWEEP_METHODS}}
    out = resolve(given)
    scoring = out["influence_scoring"]
    assert scoring["method"] == "held_out_choice" and scoring["recommended"]["method"] == "held_out"
    assert scoring["options"] == {"candidates": ["tdds", "herding"], "ratio": 0.8, "budget": "steps",
                                  "methods": {"tdds": {"scorer": "tdds"}, "herding": {"scorer": "herding"}}}
    assert out["erm_training"]["trace"]["dynamics"] is True  # what tdds reads
    named = resolve({**given, "influence_scoring": {"method": "held_out_choice", "options": {"candidates": ["herding"]}}})
    assert named["influence_scoring"]["options"]["ratio"] == 0.8  # named directly: filled in the same way
    assert resolve({**given, "optimization_selection": {"ratio": 0.3}})["influence_scoring"]["method"] == \
        "last_layer_influence"


def test_a_sweep_held_out_choice_is_measured_under_each_cells_budget():
    cells = recommended_cells(HELD_OUT_TABLE, [0.9], ["epochs", "steps"], SWEEP_METHODS)
    assert [(c.score.scorer, c.score.options["budget"], c.score.options["ratio"]) for c in cells] == [
        ("held_out_choice", "epochs", 0.9), ("held_out_choice", "steps", 0.9)]
    assert cells[0].score.key != cells[1].score.key
    assert cells[0].score.erm.trace["dynamics"] is True
