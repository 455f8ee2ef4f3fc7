"""End-to-end: the real prune pipeline, catalog and MLflow tracking on a tiny configuration."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import torch
import yaml

from dataset_pruning.data import pruned_subset
from dataset_pruning.selection import removal_norm

from kedro_runs import PROJECT_ROOT, latest as _latest, load_latest as _load_latest, run as _run  # noqa: E402


def test_prune_pipeline_end_to_end(kedro_project, tiny_prune_params, capsys):
    _run(kedro_project, tiny_prune_params)
    printed = capsys.readouterr().out
    data = kedro_project / "data"
    train = _load_latest(data / "02_intermediate" / "train_set.pt")
    n = len(train)
    removed = json.loads(_latest(data / "07_model_output" / "removed_indices.json").read_text())
    influence = np.load(_latest(data / "07_model_output" / "influence_vectors.npy"), allow_pickle=False)
    metrics = json.loads(_latest(data / "08_reporting" / "pruning_metrics.json").read_text())

    assert len(removed) == round(0.3 * n) and len(set(removed)) == len(removed)
    assert n - len(removed) == n - round(0.3 * n)  # the kept set has the requested size
    assert influence.shape[0] == n
    assert np.isfinite(metrics["eps"])
    assert metrics["eps"] == pytest.approx(removal_norm(influence, np.array(removed)), rel=1e-9)
    assert metrics["eps_over_n"] == pytest.approx(metrics["eps"] / n)
    assert metrics["generalization_gap"] == pytest.approx(metrics["pruned_test_loss"] - metrics["full_test_loss"])
    exports = _latest(data / "07_model_output" / "index_sets")  # kept and removed as .csv and .npy
    assert np.load(exports / "removed_indices.npy").tolist() == removed
    kept = [int(line) for line in (exports / "kept_indices.csv").read_text().split()[1:]]
    assert sorted(kept + removed) == list(range(n))
    subset = pruned_subset(train, removed)
    assert len(subset) == len(kept) and torch.equal(subset[0][0], train.x[kept[0]])

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["dataset_pruning"])
    assert len(runs) == 1
    run = runs.iloc[0]
    for key in ("eps", "eps_over_n", "m_over_n2", "full_test_loss", "full_test_accuracy", "pruned_test_loss",
                "pruned_test_accuracy", "generalization_gap"):
        assert run[f"metrics.{key}"] == pytest.approx(metrics[key])
    configured = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_optimization_selection.yml").read_text())
    assert run["params.optimization_selection.solver"] == configured["optimization_selection"]["solver"]
    assert float(run["params.optimization_selection.ratio"]) == 0.3
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id)}
    assert {"removed_indices.json", "pruning_plot.png"} <= artifacts

    # what each stage cost, logged and printed (run_report.RunReport)
    stages = ("ingest", "erm", "scoring", "selection", "retraining")
    times = {stage: run[f"metrics.time.{stage}"] for stage in stages}
    assert all(seconds > 0 for seconds in times.values()) and run["metrics.memory.peak_mb"] > 100
    assert run["metrics.time.total"] == pytest.approx(sum(times.values()))
    summary = printed[printed.index("== mnist1d·mlp·"):]
    assert f"removed {len(removed)} / {n} (30.0 %)" in summary
    assert f"{100 * metrics['pruned_test_accuracy']:.2f} % pruned" in summary
    assert f"eps/n {metrics['eps_over_n']:.3g}" in summary and "selection " in summary and "peak memory" in summary
    assert f"({run.run_id}): mlflow ui --backend-store-uri sqlite:///" in summary
    # both models as MLflow models of the run, the full and the kept training set as its inputs
    client = mlflow.MlflowClient()
    models = client.search_logged_models(experiment_ids=[run.experiment_id])
    assert sorted(m.name for m in models if m.source_run_id == run.run_id) == ["erm_model", "retrained_model"]
    inputs = client.get_run(run.run_id).inputs.dataset_inputs
    contexts = {i.tags[0].value: i.dataset for i in inputs if i.tags}
    assert set(contexts) == {"training", "training-subset"}
    assert json.loads(contexts["training-subset"].profile)["features_shape"][0] == n - len(removed)


def test_the_default_above_half_says_which_candidate_the_held_out_split_chose(kedro_project, tiny_prune_params,
                                                                                capsys):
    """At 90 % the default measures its candidates on a held-out split (scoring/held_out.py): the winner is in the
    MLflow run's name and tags and in the summary, each candidate's accuracy is a metric, and the run removes the
    winner's own selection (the exact count)."""
    _run(kedro_project, {**tiny_prune_params, "optimization_selection": {"ratio": 0.9}})
    printed = capsys.readouterr().out
    data = kedro_project / "data"
    n = len(_load_latest(data / "02_intermediate" / "train_set.pt"))
    removed = json.loads(_latest(data / "07_model_output" / "removed_indices.json").read_text())
    assert len(removed) == round(0.9 * n)
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    run = mlflow.search_runs(experiment_names=["dataset_pruning"]).iloc[0]
    chosen = run["tags.recommended.chosen"]
    accuracy = json.loads(run["tags.recommended.held_out_accuracy"])
    assert set(accuracy) == {"tdds", "kernel_herding"} and accuracy[chosen] == max(accuracy.values())
    assert run[f"metrics.scoring.held_out.accuracy.{chosen}"] == pytest.approx(accuracy[chosen])
    assert run["tags.mlflow.runName"] == f"mnist1d·mlp·held_out_choice:{chosen}·hybrid·r0.90·s0"
    assert run["tags.recommended.method"] == "held_out"
    assert f"held-out choice: {chosen} (accuracy on 20 % of the training set held out, epochs budget: " in printed
    assert f"MLflow run 'mnist1d·mlp·held_out_choice:{chosen}·hybrid·r0.90·s0'" in printed


def test_second_run_keeps_the_first(kedro_project, tiny_prune_params, monkeypatch):
    """Versioned outputs: a second run adds a version beside the first instead of overwriting it, also when both
    started in the same millisecond (Kedro's save version; two runs started together met it): the second takes the
    next free millisecond."""
    import kedro.framework.session.session as kedro_session

    monkeypatch.setattr(kedro_session, "generate_timestamp", lambda: "2026-12-07T12.50.56.113Z")
    _run(kedro_project, tiny_prune_params)
    _run(kedro_project, tiny_prune_params)
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["dataset_pruning"])
    assert len(runs) == 2 and (runs["status"] == "FINISHED").all()  # one MLflow run per kedro run
    for entry in ("02_intermediate/train_set.pt", "06_models/erm_model.pt", "07_model_output/influence_vectors.npy",
                  "07_model_output/removed_indices.json", "08_reporting/pruning_metrics.json"):
        versions = sorted(p.name for p in (kedro_project / "data" / entry).iterdir())
        assert versions == ["2026-12-07T12.50.56.113Z", "2026-12-07T12.50.56.114Z"], entry
    assert not [p for p in (kedro_project / "data/.save_versions").iterdir() if p.is_dir()]  # claims end with runs


@pytest.mark.parametrize(
    "params, message",
    [
        ({"optimization_selection": {"ratio": 1.5}}, "ratio must lie strictly between 0 and 1"),
        ({"optimization_selection": {"problem": "generalization", "eps": -1.0}}, "eps must be >= 0"),
        ({"optimization_selection": {"solver": "tabu"}}, "unknown solver 'tabu'"),
        ({"optimization_selection": {"options": {"budget": 5}}}, r"takes no option\(s\) \['budget'\]"),
        ({"optimization_selection": {"options": {"tabu_tenure": [15, 5]}}}, "tabu_tenure"),
        ({"optimization_selection": {"solver": "bucketed", "options": {"inner_options": {"stal": 5}}}},
         r"'hybrid' takes no option\(s\) \['stal'\].*did you mean 'stall'"),
        ({"erm_training": {"model": {"name": "resnet9"}}}, "unknown model 'resnet9'"),
        ({"influence_scoring": {"method": "shapley"}}, "unknown scoring method 'shapley'"),
        ({"ingest": {"dataset": "imagenet21k"}}, "unknown data set 'imagenet21k'"),
        ({"optimisation_selection": {"ratio": 0.3}}, "did you mean 'optimization_selection'"),
        ({"erm_training": {"training": {"device": "gpu"}}}, "device 'gpu' is not one of auto, cpu, cuda"),
        ({"influence_scoring": {"device": "cuda:x"}}, "device 'cuda:x' is not one of"),
        pytest.param({"influence_scoring": {"device": "cuda"}}, "CUDA is not available on this machine",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
        ({"ingest": {"dataset": "imagefolder", "options": {"imgsize": 32}}}, r"takes no option\(s\) \['imgsize'\]"),
        ({"data_root": "/etc/hostname/data"}, "is not a writable folder"),
        ({"influence_scoring": {"influence": {"damping": -1}}}, r"influence.damping = -1: input should be greater "),
        ({"influence_scoring": {"influence": {"hessian": "lissa", "lissa": {"damping": 0}}}},
         r"influence.lissa.damping = 0: input should be greater than 0"),
        ({"influence_scoring": {"method": "whole_network_influence", "options": {"damping": -1}}},
         r"options.damping = -1: input should be greater than or equal to 0"),
        ({"influence_scoring": {"method": "el2n", "options": {"runs": 2.5}}}, r"options.runs = 2.5: .*valid integer"),
        ({"ingest": {"options": {"num_samples": "abc"}}}, r"num_samples = 'abc': input should be a valid integer"),
        ({"erm_training": {"model": {"name": "mlp", "options": {"hidden": 0}}}}, r"options.hidden = 0"),
        ({"influence_scoring": {"method": "el2n"}, "optimization_selection": {"problem": "generalization", "eps": 0.1}},
         "gives scalar scores"),
        ({"influence_scoring": {"method": "held_out_choice", "options": {"candidates": ["tdds", "kernel_herdin"]}},
          "optimization_selection": {"ratio": 0.9}},
         r"influence_scoring.options.candidates: held_out_choice: candidates \['kernel_herdin'\] are not defined"),
        ({"recommend": {"by_ratio": [{"up_to": 1.0, "method": "h", "scorer": "held_out_choice",
                                      "options": {"candidates": ["eq4"]}}]}, "optimization_selection": {"ratio": 0.9}},
         r"recommend.by_ratio.0.options.candidates: held_out_choice: it compares scalar scorers only; \['eq4'\]"),
    ],
)
def test_bad_parameters_stop_before_any_node(kedro_project, params, message):
    with pytest.raises(ValueError, match=message):
        _run(kedro_project, params)
    assert not (kedro_project / "data" / "06_models").exists()  # nothing was trained


def test_missing_data_folder_stops_at_ingest_with_the_layout(kedro_project):
    params = {"ingest": {"dataset": "cifar10", "root": str(kedro_project / "raw")}}
    with pytest.raises(Exception, match="cifar-10-batches-py") as raised:
        _run(kedro_project, params)
    assert "data_batch_1" in str(raised.value)
    assert not (kedro_project / "data" / "06_models").exists()  # nothing was trained
