"""Reproducible solvers (issue 14): with default options every solver stops on step budgets (moves, tabu steps,
FISTA iterations, annealing steps, failed kicks), so the same seed and data give the same removed set whatever
the machine's load or its clock; a wall-clock ``time_budget_s`` is only an optional extra stop.

Two checks of the defaults of ``hybrid`` (the pipeline's solver), ``swap`` and ``annealing``: the removed set is
the same (1) while two CPU-burning processes compete for the cores and (2) when ``time.perf_counter`` runs
1,000 s per call (every deadline derived from it would be long past). Both fail on the solvers that stopped on a
60 s default budget: annealing's schedule was geometric in time, and under a fast clock hybrid and swap cut their
start, local search and tabu search short."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dataset_pruning.selection import SOLVERS, removal_norm, select_removed

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"
DEFAULTS = ["hybrid", "swap", "annealing"]  # every option at its library default (= the pipeline's: options {})


def instance():
    """Heavy-tailed rows with a common mean and three classes, small enough for the default budgets."""
    rng = np.random.default_rng(7)
    S = ((rng.normal(size=(240, 6)) + 0.3) * rng.lognormal(size=(240, 1))).astype(np.float32)
    return S, rng.integers(0, 3, size=240)


_REFERENCE: dict[str, np.ndarray] = {}


def reference(name: str) -> np.ndarray:
    """The removed set of an unloaded run with the real clock (computed once per solver)."""
    if name not in _REFERENCE:
        S, _ = instance()
        _REFERENCE[name] = np.asarray(SOLVERS.get(name)(seed=3).cardinality(S, 96))
    return _REFERENCE[name]


@pytest.mark.parametrize("name", DEFAULTS)
def test_same_seed_same_removed_set_while_the_cpu_is_loaded(name):
    expected = reference(name)
    S, _ = instance()
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.2)  # let them start burning
        loaded = np.asarray(SOLVERS.get(name)(seed=3).cardinality(S, 96))
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()
    assert len(loaded) == 96
    assert np.array_equal(loaded, expected)


@pytest.mark.parametrize("name", DEFAULTS)
def test_removed_set_does_not_depend_on_the_clock(name, monkeypatch):
    expected = reference(name)
    S, _ = instance()
    real, calls = time.perf_counter, [0]

    def fast():  # every read of the clock is 1,000 s after the previous one
        calls[0] += 1
        return real() + 1000.0 * calls[0]

    monkeypatch.setattr(time, "perf_counter", fast)
    removed = np.asarray(SOLVERS.get(name)(seed=3).cardinality(S, 96))
    monkeypatch.undo()
    assert np.array_equal(removed, expected)


@pytest.mark.parametrize("name", DEFAULTS + ["relaxation"])
def test_eq3_and_class_quotas_do_not_depend_on_the_clock(name, monkeypatch):
    """Eq. 3 and class-balanced Eq. 4 take the same step budgets (fast options keep the test short)."""
    S, labels = instance()
    quota = np.bincount(labels) // 3
    options = {"annealing": {"steps": 20_000}, "hybrid": {"stall": 200}, "swap": {"stall": 20}}.get(name, {})
    eps = 2.0 * float(np.median(np.linalg.norm(S, axis=1)))
    plain = (SOLVERS.get(name)(**options).generalization(S, eps), SOLVERS.get(name)(**options).cardinality(S, quota, labels))
    real, calls = time.perf_counter, [0]

    def fast():
        calls[0] += 1
        return real() + 1000.0 * calls[0]

    monkeypatch.setattr(time, "perf_counter", fast)
    clocked = (SOLVERS.get(name)(**options).generalization(S, eps), SOLVERS.get(name)(**options).cardinality(S, quota, labels))
    monkeypatch.undo()
    assert removal_norm(S, plain[0]) <= eps
    assert all(np.array_equal(a, b) for a, b in zip(plain, clocked))


def test_library_defaults_are_step_budgets_and_the_pipeline_uses_them():
    """No solver has a default wall-clock budget, and the parameters file leaves every option at its default."""
    for name in SOLVERS.names():
        parameters = inspect.signature(SOLVERS.get(name)).parameters
        for option in ("time_budget_s", "refine_s", "time_limit_s"):
            if option in parameters:
                assert parameters[option].default is None, (name, option)
    assert inspect.signature(SOLVERS.get("annealing")).parameters["steps"].default is not None
    params = yaml.safe_load((CONF / "parameters_optimization_selection.yml").read_text())["optimization_selection"]
    assert params["options"] == {} and params["solver"] == "hybrid"


def test_a_time_budget_is_still_an_extra_stop():
    S, _ = instance()
    start = time.perf_counter()
    removed = SOLVERS.get("annealing")(steps=10**9, time_budget_s=0.5).cardinality(S, 96)  # steps alone: hours
    assert time.perf_counter() - start < 10.0 and len(removed) == 96
    timed = SOLVERS.get("annealing")(steps=None, time_budget_s=0.3)  # the schedule in time (benchmarks' curves)
    assert len(timed.cardinality(S, 96)) == 96
    for name in ("hybrid", "swap", "relaxation"):
        assert len(SOLVERS.get(name)(time_budget_s=5.0).cardinality(S, 96)) == 96


@pytest.mark.parametrize(
    "solver, options, message",
    [
        ("hybrid", {"time_budget": 5}, r"takes no option\(s\) \['time_budget'\].*did you mean 'time_budget_s'"),
        ("annealing", {"step": 5}, r"takes no option\(s\) \['step'\].*did you mean 'steps'"),
        ("annealing", {"steps": None}, "steps"),
        ("annealing", {"steps": 0}, "steps"),
        ("hybrid", {"tabu_steps": -1}, "tabu_steps"),
        ("hybrid", {"time_budget_s": -1}, "hybrid's time_budget_s"),
        ("swap", {"max_kicks": 2.5}, "max_kicks"),
        ("exact", {"node_limit": 0}, "node_limit"),
    ],
)
def test_budget_options_are_validated(solver, options, message):
    S, _ = instance()
    with pytest.raises(ValueError, match=message):
        select_removed(S, problem="cardinality", solver=solver, ratio=0.4, options=options)
