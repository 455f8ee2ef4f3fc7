"""The optimization_selection stage: its node validates parameters, uses the labels for class balance, and
returns the selection's MLflow metrics; the catalog logs them under the 'selection' prefix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from kedro.runner import SequentialRunner
from kedro.io import DataCatalog, MemoryDataset

from dataset_pruning.data import TensorData
from dataset_pruning.pipelines.optimization_selection import create_pipeline
from dataset_pruning.pipelines.optimization_selection.nodes import select_samples
from dataset_pruning.selection import removal_norm

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"


def tiny(n: int = 120, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = torch.as_tensor(rng.integers(0, 3, n))
    return rng.normal(size=(n, d)).astype(np.float32), TensorData(torch.zeros(n, 2), labels, 3, "tiny")


def test_node_returns_indices_and_metrics_with_class_balance():
    S, train = tiny()
    params = {"problem": "cardinality", "solver": "hybrid", "ratio": 0.4, "class_balanced": True,
              "options": {"time_budget_s": 5, "stall": 10}}
    removed, metrics = select_samples(S, train, params)
    labels = train.y.numpy()
    sizes = np.bincount(labels)
    counts = np.bincount(labels[removed], minlength=3)
    assert counts.sum() == round(0.4 * 120)
    assert all(np.floor(0.4 * s) <= c <= np.ceil(0.4 * s) for c, s in zip(counts, sizes))
    assert set(metrics) >= {"objective", "eps", "eps_over_n", "m_over_n2", "bound", "seconds"}
    assert all(set(v) == {"value", "step"} and isinstance(v["value"], float) for v in metrics.values())
    assert metrics["objective"]["value"] == pytest.approx(removal_norm(S, np.array(removed)))
    assert metrics["bound"]["value"] <= metrics["objective"]["value"] + 1e-9


def test_node_eq3_respects_eps_and_class_floor():
    S, train = tiny(seed=1)
    params = {"problem": "generalization", "solver": "swap", "eps": 2.0, "class_balanced": True, "class_floor": 0.8}
    removed, metrics = select_samples(S, train, params)
    labels = train.y.numpy()
    assert removal_norm(S, np.array(removed)) <= 2.0
    assert (np.bincount(labels[removed], minlength=3) <= np.bincount(labels) - np.ceil(0.8 * np.bincount(labels))).all()
    assert metrics["bound"]["value"] >= len(removed)


def test_pipeline_wiring_and_catalog_entry():
    S, train = tiny()
    stage = create_pipeline()
    assert stage.inputs() == {"influence_vectors", "train_set", "params:optimization_selection", "sample_scores"}
    assert stage.outputs() == {"removed_indices", "selection_metrics"}
    catalog = DataCatalog({
        "influence_vectors": MemoryDataset(S),
        "train_set": MemoryDataset(train),
        "params:optimization_selection": MemoryDataset({"ratio": 0.25, "solver": "greedy"}),
        "sample_scores": MemoryDataset({"method": "last_layer_influence", "keep": None, "values": None}),
        "removed_indices": MemoryDataset(),
        "selection_metrics": MemoryDataset(),
    })
    SequentialRunner().run(stage, catalog)
    assert len(catalog.load("removed_indices")) == 30
    entry = yaml.safe_load((CONF / "catalog_selection.yml").read_text())["selection_metrics"]
    assert entry == {"type": "kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset", "prefix": "selection"}
    default = yaml.safe_load((CONF / "parameters_optimization_selection.yml").read_text())["optimization_selection"]
    assert default["solver"] == "hybrid"


def test_scalar_scores_are_selected_by_the_score_rule_and_eps_is_still_measured_on_S():
    S, train = tiny()
    values = np.arange(120, dtype=np.float64)[::-1].copy()  # sample i scores 119 - i
    scores = {"method": "el2n", "keep": "highest", "values": values, "info": {}}
    removed, metrics = select_samples(S, train, {"ratio": 0.25}, scores)
    assert removed == list(range(90, 120))  # the 30 lowest scores are removed, the highest kept
    assert metrics["eps"]["value"] == pytest.approx(removal_norm(S, np.array(removed)))
    with pytest.raises(ValueError, match="problem: cardinality"):
        select_samples(S, train, {"problem": "generalization", "eps": 1.0}, scores)


def test_vectors_of_another_method_are_solved_but_eps_stays_last_layer():
    S, train = tiny()
    other = tiny(seed=5)[0]
    scores = {"method": "whole_network_influence", "keep": None, "values": other, "info": {}}
    removed, metrics = select_samples(S, train, {"ratio": 0.25, "solver": "greedy"}, scores)
    assert metrics["objective"]["value"] == pytest.approx(removal_norm(other, np.array(removed)))
    assert metrics["eps"]["value"] == pytest.approx(removal_norm(S, np.array(removed)))


def test_node_passes_the_rule_its_options_and_the_scores_hard_end():
    S, train = tiny()
    values = np.arange(120, dtype=np.float64)  # AUM-like: high = easy (kept end), low = hard
    scores = {"method": "aum", "keep": "highest", "values": values, "info": {"hard": "lowest"}}
    params = {"ratio": 0.5, "rule": "ccs", "rule_options": {"beta": 0.25, "strata": 4}, "seed": 3}
    removed, metrics = select_samples(S, train, params, scores)
    assert len(removed) == 60 and set(range(30)) <= set(removed)  # the 30 lowest margins are cut first
    assert metrics["eps"]["value"] == pytest.approx(removal_norm(S, np.array(removed)))
    balanced, _ = select_samples(S, train, {**params, "class_balanced": True}, scores)
    labels = train.y.numpy()
    from dataset_pruning.selection import class_quotas

    assert np.bincount(labels[balanced], minlength=3).tolist() == class_quotas(labels, 0.5).tolist()
    with pytest.raises(ValueError, match=r"rule 'ccs' takes no option\(s\) \['bta'\]"):
        select_samples(S, train, {"ratio": 0.5, "rule": "ccs", "rule_options": {"bta": 0.1}}, scores)


def test_node_solves_eq4_under_group_budgets():
    S, train = tiny()
    params = {"ratio": 0.5, "solver": "greedy", "groups": "strata", "n_groups": 3, "group_budget": "coverage"}
    removed, metrics = select_samples(S, train, params)
    assert len(removed) == 60 and metrics["budget_cells"]["value"] >= 2
