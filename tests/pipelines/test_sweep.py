"""The sweep and the report: a tiny grid end to end on Dask, resumed without training, one tagged nested MLflow run
per cell, the report rebuilt from the store, serial = Dask, and the starter notebook executed on the result."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import nbformat
import pandas as pd
import pytest
from kedro.framework.hooks import hook_impl
from nbclient import NotebookClient

from dataset_pruning.data import load_dataset
from dataset_pruning.experiments import expand_grid, run_sweep
from dataset_pruning.experiments.sweep import _submit
from dataset_pruning.experiments.tasks import _data as split_for
from dataset_pruning.experiments.report import build_report
from dataset_pruning.pipelines.report.nodes import cells_from_runs
from dataset_pruning.tensor_files import load_tensors

from kedro_runs import PROJECT_ROOT, latest, run  # noqa: E402

pytestmark = pytest.mark.slow
TINY_METHODS = {"random": {"scorer": "random"},
                "el2n": {"scorer": "el2n", "options": {"runs": 2, "epochs": 1}}}


def tiny_sweep(tmp: Path, executor: str = "dask") -> dict:
    preset = {"methods": ["random", "el2n"], "ratios": [0.3, 0.6], "seeds": [0, 1], "training": {"epochs": 2}}
    return {
        "ingest": {"options": {"num_samples": 600}},
        "erm_training": {"model": {"name": "mlp"}},
        "sweep": {"preset": "tiny", "presets": {"tiny": preset}, "methods": TINY_METHODS, "executor": executor,
                  "cache": str(tmp / "cache")},
        "report": {},
        "docs_root": str(tmp / "docs"),
    }


def sweep_runs(workdir: Path) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        return mlflow.search_runs(search_all_experiments=True)
    finally:
        mlflow.set_tracking_uri(None)


class NestedRunsBeforeTheTable:
    """Counts the sweep run's nested runs when the node has finished, before its table is saved."""

    seen: int | None = None

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        if dataset_name == "sweep_results":
            parent = mlflow.active_run().info
            self.seen = len(mlflow.MlflowClient().search_runs(
                [parent.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'"))


def test_a_tiny_sweep_runs_resumes_and_reports_from_the_store(kedro_project, capsys):
    params = tiny_sweep(kedro_project)
    watch = NestedRunsBeforeTheTable()
    run(kedro_project, params, pipeline="sweep", hooks=[watch])
    assert watch.seen == 8  # each cell was logged as it finished, not when the whole sweep ended
    assert f"== sweep·{params['sweep']['preset']} ==" in capsys.readouterr().out  # the summary names the sweep's run
    results = pd.read_csv(latest(kedro_project / "data/08_reporting/sweep_results.csv"))
    assert len(results) == 2 * 2 * 2 and results["computed"].all()
    assert set(results["method"]) == {"random", "el2n"} and set(results["ratio"]) == {0.3, 0.6}
    assert (results["removed"] == (results["ratio"] * results["n"]).round()).all()

    runs = sweep_runs(kedro_project)
    [parent] = runs[runs["tags.mlflow.parentRunId"].isna()].run_id
    children = runs[runs["tags.mlflow.parentRunId"] == parent]
    assert len(children) == 8 and (children["status"] == "FINISHED").all()
    for tag in ("dataset", "model", "method", "solver", "ratio", "seed", "budget"):
        assert children[f"tags.{tag}"].notna().all(), tag
    assert sorted(children["tags.mlflow.runName"]) == sorted(results["cell"])
    assert set(children["tags.solver"]) == {"score_rule"} and set(children["tags.budget"]) == {"epochs"}
    by_key = children.set_index("tags.cell_key")
    for _, row in results.iterrows():
        assert by_key.loc[row["cell_key"], "metrics.pruned_test_accuracy"] == pytest.approx(row["pruned_test_accuracy"])

    cache = kedro_project / "cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    run(kedro_project, params, pipeline="sweep")  # resumed: every cell is read from the cache
    again = pd.read_csv(latest(kedro_project / "data/08_reporting/sweep_results.csv"))
    assert not again["computed"].any()
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before  # nothing trained
    pd.testing.assert_series_equal(again["pruned_test_accuracy"], results["pruned_test_accuracy"])

    run(kedro_project, params, pipeline="report")
    page = (kedro_project / "docs" / "results.md").read_text()
    expected, _ = build_report(results, source=" of the sweep presets tiny")
    assert page == expected  # the same tables from the MLflow store as from the sweep's own table
    assert "| random |" in page and "| el2n |" in page
    assert (kedro_project / "docs/figures/accuracy_vs_ratio.png").stat().st_size > 0
    report_run = sweep_runs(kedro_project).sort_values("start_time").iloc[-1]
    artifacts = {a.path for a in mlflow.MlflowClient(f"sqlite:///{kedro_project / 'mlflow.db'}")
                 .list_artifacts(report_run.run_id)}
    assert {"results.md", "figures"} <= artifacts

    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "sweep_starter.ipynb", as_version=4)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{kedro_project / 'mlflow.db'}"
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(PROJECT_ROOT / "notebooks")}}).execute()
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    table_output = notebook.cells[2].outputs[0]["data"]["text/plain"]
    assert "el2n" in table_output and "random" in table_output


def test_the_report_reads_each_presets_newest_sweep_run_only():
    """A preset swept again after its configuration changed (a method's options, so another cell key) is reported
    as its newest sweep run has it: the older run's cell of the same seed and ratio is not mixed in."""
    def cell(parent, preset, key, minute, accuracy):
        return {"tags.mlflow.parentRunId": parent, "tags.preset": preset, "tags.cell_key": key,
                "start_time": pd.Timestamp(f"2026-12-07 17:{minute:02d}", tz="UTC"), "tags.method": "recommended",
                "tags.ratio": "0.7", "tags.seed": "0", "metrics.pruned_test_accuracy": accuracy}
    runs = pd.DataFrame([cell("old", "check", "cell-random", 1, 0.90), cell("old", "check", "cell-before", 2, 0.94),
                         cell("new", "check", "cell-random", 10, 0.90), cell("new", "check", "cell-after", 11, 0.96),
                         cell("other", "validation", "cell-before", 5, 0.93)])
    cells = cells_from_runs(runs)
    assert sorted(zip(cells["preset"], cells["cell_key"])) == [
        ("check", "cell-after"), ("check", "cell-random"), ("validation", "cell-before")]
    assert list(cells_from_runs(runs, "old")["cell_key"]) == ["cell-before", "cell-random"]


BASE = {  # the pipeline's blocks, small
    "ingest": {"dataset": "mnist1d", "root": "data/01_raw", "seed": 42, "options": {"num_samples": 400}},
    "erm_training": {"model": {"name": "mlp", "options": {}},
                     "training": {"epochs": 2, "batch_size": 128, "lr": 0.1, "momentum": 0.9,
                                  "weight_decay": 5e-4, "schedule": "cosine", "augment": False, "amp": True,
                                  "seed": 0, "device": "auto"},
                     "trace": {"steps": False, "checkpoints": 0, "dynamics": False, "probability_epochs": 30,
                               "max_step_bytes": 2e9}},
    "influence_scoring": {"influence": {}},
    "optimization_selection": {"problem": "cardinality", "solver": "hybrid", "ratio": 0.5, "eps": None, "seed": 0,
                               "class_balanced": False, "class_floor": 0.0, "projection_dim": None,
                               "bound_iterations": 0, "options": {}},
}


def test_serial_and_dask_give_the_same_figures(tmp_path):
    preset = {"datasets": ["mnist1d"], "models": [], "methods": ["random", "eq4"], "ratios": [0.5], "eps": [],
              "seeds": [0, 1], "budgets": ["epochs", "steps"], "training": {}, "track_accuracy": False,
              "theorem1_random": False}
    cells = expand_grid(preset, {"random": {"scorer": "random"}, "eq4": {"scorer": "last_layer_influence"}}, BASE)
    serial = run_sweep(cells, str(tmp_path / "serial"), executor="serial")
    dask = run_sweep(cells, str(tmp_path / "dask"), executor="dask", n_workers=2)
    figures = ["removed", "eps", "pruned_test_accuracy", "pruned_test_loss", "full_test_loss", "retrain_steps"]
    pd.testing.assert_frame_equal(serial[figures], dask[figures])
    steps = serial.set_index(["method", "seed", "budget"])["retrain_steps"]
    assert (steps.xs("steps", level="budget") == 2 * 3).all()  # ERM: 2 epochs x ceil(320 / 128) steps
    # one selection per (method, seed, ratio), shared by the cells of both budgets
    assert len(list((tmp_path / "dask" / "selections").glob("*/removed.npy"))) == 2 * 2
    for budget_cells in serial.groupby(["method", "seed"]):
        removed = {np.load(tmp_path / "dask" / "cells" / key / "removed.npy").tobytes()
                   for key in budget_cells[1]["cell_key"]}
        assert len(budget_cells[1]) == 2 and len(removed) == 1


def test_el2n_and_grand_of_one_erm_train_their_short_runs_once_on_dask(tmp_path):
    preset = {"datasets": ["mnist1d"], "models": [], "methods": ["el2n", "grand"], "ratios": [0.5], "eps": [],
              "seeds": [0], "budgets": ["epochs"], "training": {}, "track_accuracy": False, "theorem1_random": False}
    methods = {name: {"scorer": name, "options": {"runs": 3, "epochs": 1}} for name in ("el2n", "grand")}
    cells = expand_grid(preset, methods, BASE)
    run_sweep(cells, str(tmp_path), executor="dask", n_workers=2)
    [folder] = list((tmp_path / "early").iterdir())  # one ERM
    assert len(list(folder.glob("run-*.pt"))) == 3
    read = sorted(load_tensors(path)["info"]["runs_read"] for path in (tmp_path / "scores").glob("*/scores.pt"))
    assert read == [0, 3]  # the second scorer read the first one's runs instead of training them
    # and it is submitted after the first (on two idle workers both could otherwise start at once)
    scores = []  # (scorer, its handle, the handle it waits for) of every run_score submitted

    class Recording:
        def submit(self, fn, *args, priority=0):
            handle = object()
            if fn.__name__ == "run_score":
                scores.append((args[0].scorer, handle, args[-1]))
            return handle

        def gather(self, handles, on_done):
            return [{} for _ in handles]

    _submit(Recording(), cells, str(tmp_path / "again"), 1, False, lambda row: None)
    (first, first_handle, first_waits), (second, _, second_waits) = scores
    assert (first, first_waits) == ("el2n", None) and (second, second_waits) == ("grand", first_handle)


def test_influence_norm_reads_the_erm_s_when_its_options_match_and_solves_again_when_not(tmp_path):
    from dataset_pruning.scoring import score_samples
    from dataset_pruning.training import load_model

    preset = {"datasets": ["mnist1d"], "models": [], "methods": ["same", "other"], "ratios": [0.5], "eps": [],
              "seeds": [0], "budgets": ["epochs"], "training": {}, "track_accuracy": False, "theorem1_random": False}
    methods = {"same": {"scorer": "influence_norm"},
               "other": {"scorer": "influence_norm", "options": {"damping": 0.05}}}
    cells = expand_grid(preset, methods, BASE)
    run_sweep(cells, str(tmp_path), executor="serial")
    [erm] = list((tmp_path / "erm").iterdir())
    model = load_model(load_tensors(erm / "model.pt"))
    train, _ = split_for(cells[0].score.erm)
    stored = {load_tensors(path)["info"].get("same_as"): load_tensors(path)["values"]
              for path in (tmp_path / "scores").glob("*/scores.pt")}
    assert set(stored) == {"influence_vectors", None}  # read off S once, solved once
    options = {"seed": 0, "weight_decay": 5e-4, "device": "auto", "progress": False}
    for damping, values in ((0.001, stored["influence_vectors"]), (0.05, stored[None])):
        direct = score_samples("influence_norm", model, train, damping=damping, **options).values.numpy()
        np.testing.assert_array_equal(values, direct)  # the very numbers the scorer gives
    assert not np.allclose(stored["influence_vectors"], stored[None])


def test_the_theorem1_grid_pairs_every_eq3_cell_with_a_random_removal_of_its_size(tmp_path):
    one_epoch = {**BASE["erm_training"]["training"], "epochs": 1}  # eps below: S of n = 320 after 1 epoch
    base = {**BASE, "erm_training": {**BASE["erm_training"], "training": one_epoch}}
    preset = {"datasets": ["mnist1d"], "models": [], "methods": ["eq3"], "ratios": [], "eps": [3.0, 10.0],
              "seeds": [0], "budgets": ["epochs"], "training": {}, "track_accuracy": False, "theorem1_random": True}
    cells = expand_grid(preset, {"eq3": {"scorer": "last_layer_influence",
                                          "selection": {"problem": "generalization"}}}, base)
    eq3, random = cells[0::2], cells[1::2]
    assert [c.selection["eps"] for c in eq3] == [3.0, 10.0] and all(c.selection["problem"] == "generalization"
                                                                   for c in eq3)
    assert [c.matched for c in random] == [c.key for c in eq3]
    assert all(c.selection["problem"] == "cardinality" and c.score.scorer == "random" for c in random)
    assert [c.tags["eps_budget"] for c in random] == [3.0, 10.0]  # reported beside the Eq. 3 cell of its size
    rows = run_sweep(cells, str(tmp_path), executor="serial")
    assert (rows["removed"].to_numpy()[0::2] == rows["removed"].to_numpy()[1::2]).all()
    assert rows["removed"].iloc[0] < rows["removed"].iloc[2]  # a larger eps removes more


def test_a_validation_preset_measures_on_held_out_training_samples_never_the_test_set(tmp_path):
    preset = {"datasets": ["mnist1d"], "models": [], "methods": ["random"], "ratios": [0.5], "eps": [], "seeds": [0],
              "budgets": ["epochs"], "training": {"epochs": 1}, "track_accuracy": False, "theorem1_random": False,
              "validation": 0.25}
    [cell] = expand_grid(preset, {"random": {"scorer": "random"}}, BASE)
    assert cell.tags["evaluated_on"] == "validation"
    train, test = load_dataset("mnist1d", seed=42, num_samples=400)
    fit_part, held_out = split_for(cell.score.erm)
    assert len(fit_part) + len(held_out) == 320 and abs(len(held_out) - 80) < 5  # a quarter of every class
    rows = {tuple(x.tolist()) for x in train.x}
    assert all(tuple(x.tolist()) in rows for x in held_out.x) and len(test) == 80  # held out from the training set
    assert not {tuple(x.tolist()) for x in fit_part.x} & {tuple(x.tolist()) for x in held_out.x}
    [row] = run_sweep([cell], str(tmp_path), executor="serial").to_dict("records")
    assert row["n"] == len(fit_part) and row["removed"] == round(0.5 * len(fit_part))
