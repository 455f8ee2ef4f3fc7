"""Every figure of a run is the product of that run's parameters and data: concurrent runs, inputs from other
runs or data, interrupted runs, errors a user reads, and the library against the pipeline."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from kedro.framework.hooks import hook_impl
from kedro.io.core import generate_timestamp

from dataset_pruning.selection import removal_norm

from kedro_runs import PROJECT_ROOT, run  # noqa: E402

KEDRO = str(Path(sys.executable).parent / "kedro")
pytestmark = pytest.mark.slow


def cli_params(workdir: Path, params: dict) -> str:
    """``--params`` text for a `kedro run` in its own process (flattened with dots)."""
    flat = {"data_root": str(workdir / "data"), "mlflow_db": str(workdir / "mlflow.db")}

    def walk(prefix, value):
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = value

    walk("", params)
    return ",".join(f"{key}={value}" for key, value in flat.items())


def kedro_cli(workdir: Path, params: dict, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([KEDRO, "run", "--params", cli_params(workdir, params), *args], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def versions(data: Path, entry: str) -> dict[str, dict]:
    """version -> provenance.json of a versioned catalog entry."""
    root = data / entry
    return {p.name: json.loads((p / "provenance.json").read_text()) for p in sorted(root.iterdir())
            if (p / "provenance.json").is_file()}


def of_run(data: Path, entry: str, run_id: str) -> Path:
    [version] = [v for v, record in versions(data, entry).items() if record["run_id"] == run_id]
    return data / entry / version / Path(entry).name


def snapshot(data: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data)): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}


def runs_of(workdir: Path):
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        return mlflow.search_runs(experiment_names=["dataset_pruning"])
    finally:
        mlflow.set_tracking_uri(None)


class RunAnotherDuringErm:
    """Runs a whole second `kedro run` (its own process, another ratio) while this run's ERM has just finished:
    every version it writes is newer than this run's, so "the newest on disk" is the other run's."""

    def __init__(self, workdir: Path, params: dict) -> None:
        self.workdir, self.params, self.done = workdir, params, False

    @hook_impl
    def after_node_run(self, node) -> None:
        if node.name == "erm_training.train_erm" and not self.done:
            other = kedro_cli(self.workdir, self.params)
            out, err = other.communicate(timeout=600)
            assert other.returncode == 0, err[-3000:]
            self.done = True


def test_concurrent_runs_each_log_their_own_figures(kedro_project, tiny_prune_params):
    other = {**tiny_prune_params, "optimization_selection": {"ratio": 0.5}}
    during = RunAnotherDuringErm(kedro_project, other)
    run(kedro_project, tiny_prune_params, hooks=[during])  # ratio 0.3
    assert during.done
    data, runs = kedro_project / "data", runs_of(kedro_project)
    assert len(runs) == 2 and (runs["status"] == "FINISHED").all()
    n = len(np.load(of_run(data, "07_model_output/influence_vectors.npy", runs.run_id[0])))
    for _, row in runs.iterrows():
        ratio = float(row["params.optimization_selection.ratio"])
        removed = json.loads(of_run(data, "07_model_output/removed_indices.json", row.run_id).read_text())
        S = np.load(of_run(data, "07_model_output/influence_vectors.npy", row.run_id))
        assert row["metrics.removed"] == len(removed) == round(ratio * n)
        assert row["metrics.eps"] == pytest.approx(removal_norm(S, np.array(removed)), rel=1e-9)
        assert row["tags.mlflow.runName"] == f"mnist1d·mlp·last_layer_influence·hybrid·r{ratio:.2f}·s0"
        assert row["tags.ratio"] == str(ratio) and row["tags.dataset"] == "mnist1d"


def test_two_first_runs_started_together_in_a_fresh_folder_both_finish(kedro_project, tiny_prune_params):
    """Both create the MLflow store at once (before: one died creating its tables); each logs its own figures."""
    ratios = (0.3, 0.5)
    fast = {"solver": "greedy", "bound_iterations": 0}  # the store is the point here, not the solve
    processes = [kedro_cli(kedro_project, {**tiny_prune_params, "optimization_selection": {"ratio": ratio, **fast}})
                 for ratio in ratios]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    data, runs = kedro_project / "data", runs_of(kedro_project)
    assert sorted(runs["status"]) == ["FINISHED", "FINISHED"]
    assert sorted(runs["params.optimization_selection.ratio"].astype(float)) == list(ratios)
    for _, row in runs.iterrows():
        removed = json.loads(of_run(data, "07_model_output/removed_indices.json", row.run_id).read_text())
        S = np.load(of_run(data, "07_model_output/influence_vectors.npy", row.run_id))
        ratio = float(row["params.optimization_selection.ratio"])
        assert row["metrics.removed"] == len(removed) == round(ratio * len(S))
        assert row["metrics.eps"] == pytest.approx(removal_norm(S, np.array(removed)), rel=1e-9)


def test_inputs_of_other_runs_or_data_stop_before_any_work_and_lose_nothing(kedro_project, tiny_prune_params):
    run(kedro_project, tiny_prune_params)
    data = kedro_project / "data"
    [(version, record)] = versions(data, "07_model_output/influence_vectors.npy").items()
    n = record["data"]["n"]
    S = np.load(data / "07_model_output/influence_vectors.npy" / version / "influence_vectors.npy")

    # m = round(ratio * n) = n: stops after ingest, before training; nothing is saved
    before = snapshot(data)
    with pytest.raises(ValueError, match=rf"removes m = round\(.*\) = {n}, every sample"):
        run(kedro_project, {**tiny_prune_params, "optimization_selection": {"ratio": 0.9999}})
    assert snapshot(data) == before

    # influence vectors computed on other data (provenance says so), pinned by the user: refused before any node
    foreign = generate_timestamp()
    folder = data / "07_model_output/influence_vectors.npy" / foreign
    folder.mkdir()
    np.save(folder / "influence_vectors.npy", S)
    other_data = {**record["data"], "dataset": "digits-train", "labels_sha256": "0" * 16}
    (folder / "provenance.json").write_text(json.dumps({**record, "data": other_data, "run_id": "elsewhere"}))
    before = snapshot(data)
    with pytest.raises(ValueError, match=r"influence_vectors \(version .*\) was computed on digits-train .* but "
                                         r"train_set is mnist1d-train"):
        run(kedro_project, tiny_prune_params, from_nodes=["optimization_selection.select_samples"],
            load_versions={"influence_vectors": foreign})
    assert snapshot(data) == before

    # a hand-made S of the wrong length (no provenance), pinned: both lengths named
    (folder / "provenance.json").unlink()
    np.save(folder / "influence_vectors.npy", S[:100])
    before = snapshot(data)
    with pytest.raises(ValueError, match=rf"influence_vectors has 100 rows but train_set has {n} samples"):
        run(kedro_project, tiny_prune_params, from_nodes=["optimization_selection.select_samples"],
            load_versions={"influence_vectors": foreign})
    assert snapshot(data) == before

    # pointing a stage at an MLflow run that wrote nothing here
    with pytest.raises(ValueError, match="no version of .* was written by that MLflow run"):
        run(kedro_project, {**tiny_prune_params, "source_run": "0123456789abcdef"},
            from_nodes=["retraining.retrain"])
    assert snapshot(data) == before
    statuses = runs_of(kedro_project)["status"].tolist()
    assert statuses.count("FINISHED") == 1 and statuses.count("FAILED") == len(statuses) - 1


def test_a_later_stage_reads_the_run_it_is_pointed_at(kedro_project, tiny_prune_params):
    """`--from-nodes` after two runs: by default the newest, with source_run the named run's; the run says which."""
    run(kedro_project, tiny_prune_params)
    run(kedro_project, {**tiny_prune_params, "optimization_selection": {"ratio": 0.5}})
    first = runs_of(kedro_project).sort_values("start_time").run_id.iloc[0]
    run(kedro_project, {**tiny_prune_params, "source_run": first}, from_nodes=["retraining.retrain"])
    last = runs_of(kedro_project).sort_values("start_time").iloc[-1]
    assert last["tags.input.removed_indices.run_id"] == first
    data = kedro_project / "data"
    removed = json.loads(of_run(data, "07_model_output/removed_indices.json", first).read_text())
    assert last["metrics.removed"] == len(removed)  # ratio 0.3's set, though the newest is ratio 0.5's


def _wait_for_running_run(workdir: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-3000:]
        if (workdir / "mlflow.db").exists():
            with sqlite3.connect(workdir / "mlflow.db") as db:
                try:
                    if db.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]:
                        return
                except sqlite3.OperationalError:  # tables not created yet
                    pass
        time.sleep(0.5)
    raise AssertionError("the run never started")


def test_an_interrupted_run_ends_killed_not_finished(kedro_project, tiny_prune_params):
    slow = {**tiny_prune_params, "erm_training": {"model": {"name": "mlp"}, "training": {"epochs": 100000}}}
    # A shell without job control starts background jobs with SIGINT ignored, and the child would inherit that.
    process = kedro_cli(kedro_project, slow, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_running_run(kedro_project, process)
    time.sleep(5)  # well into ERM (ingest takes about a second)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    [status] = runs_of(kedro_project)["status"].tolist()
    assert status == "KILLED"
    assert not (kedro_project / "data" / "06_models").exists()


def test_a_bad_parameter_prints_one_short_message(kedro_project):
    process = kedro_cli(kedro_project, {"optimisation_selection": {"ratio": 0.3}},
                        env={**os.environ, "DATASET_PRUNING_TRACEBACK": ""})
    _, err = process.communicate(timeout=300)
    assert process.returncode == 1
    message = err[err.index("Error: "):]
    assert message.startswith("Error: invalid parameters, nothing was run:\n  optimisation_selection: no such "
                              "parameter block; did you mean 'optimization_selection'?")
    assert len(message.strip().splitlines()) <= 4 and "Traceback" not in err and "╭" not in err
    assert "Traceback" in (PROJECT_ROOT / "logs" / "errors.log").read_text()


def _readme_snippet() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    return re.search(r"```python\n(from dataset_pruning.data import load_dataset.*?)```", readme, re.S).group(1)


def test_the_readme_library_snippet_selects_what_the_pipeline_selects(kedro_project, tiny_prune_params):
    """The README's library code and `kedro run` on the same tiny configuration remove the same samples."""
    code = _readme_snippet()
    tiny = {'load_dataset("mnist1d")': 'load_dataset("mnist1d", num_samples=600)', '"cnn1d"': '"mlp"',
            "TrainingConfig()": "TrainingConfig(epochs=3)", "ratio=0.5": "ratio=0.3"}
    for old, new in tiny.items():
        assert code.count(old) == 1, f"the README snippet no longer has {old}"
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    run(kedro_project, tiny_prune_params)
    [version] = versions(kedro_project / "data", "07_model_output/removed_indices.json")
    pipeline = json.loads((kedro_project / "data/07_model_output/removed_indices.json" / version /
                           "removed_indices.json").read_text())
    assert namespace["removed"].tolist() == pipeline
