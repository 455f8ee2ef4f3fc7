"""The end-of-run summary (run_report.format_summary): what a user reads last."""

from __future__ import annotations

from dataset_pruning.run_report import format_summary, stage_of

METRICS = {"eps": 0.02, "eps_over_n": 2e-6, "ratio": 0.3, "full_test_accuracy": 0.9269, "pruned_test_accuracy": 0.9172,
           "generalization_gap": 0.0218}


def test_the_summary_says_what_was_removed_what_it_cost_and_where_to_look():
    text = format_summary(METRICS, 10_000, {"erm": 10.0, "selection": 2.5}, 812.0, "label", ("name", "abc"),
                          "sqlite:///mlflow.db")
    assert text.splitlines() == [
        "== label ==",
        "removed 3000 / 10000 (30.0 %): test accuracy 92.69 % full, 91.72 % pruned (-0.97 points)",
        "eps/n 2e-06, generalization gap (test loss pruned - full) +0.0218",
        "time: erm 10.0 s, selection 2.5 s; total 12.5 s; peak memory 812 MB",
        "MLflow run 'name' (abc): mlflow ui --backend-store-uri sqlite:///mlflow.db",
    ]


def test_a_mixed_lineage_is_named_and_a_run_without_figures_still_reports_its_costs():
    tags = {"lineage.mixed": "true", "lineage.runs": "a1, b2", "lineage.differences": "erm_model: epochs 1 vs 3"}
    text = format_summary(None, None, {"sweep": 4.0}, 500.0, "sweep·quick", None, "", tags)
    assert text.splitlines() == [
        "== sweep·quick ==",
        "inputs from MLflow runs a1, b2 (mixed lineage: erm_model: epochs 1 vs 3)",
        "time: sweep 4.0 s; total 4.0 s; peak memory 500 MB",
    ]
    assert "mixed" not in format_summary(None, None, {}, 1.0, "x", None, "", {"lineage.mixed": "false"})


def test_stages_are_the_pipeline_namespaces_by_short_name():
    assert [stage_of(n) for n in ("erm_training.train_erm", "influence_scoring.score_influence", "sweep.sweep_cells",
                                  "custom.node")] == ["erm", "scoring", "sweep", "custom"]


def test_the_summary_says_which_method_the_default_chose_and_why():
    chosen = {"ratio": 0.9, "method": "d2_cut04", "why": "the smallest worst loss"}
    metrics = {"ratio": 0.9, "full_test_accuracy": 0.9, "pruned_test_accuracy": 0.5, "eps_over_n": 1e-5,
               "generalization_gap": 1.0}
    text = format_summary(metrics, 100, {}, 1.0, "x", None, "", None, chosen)
    assert text.splitlines()[1] == "recommended method at ratio 0.9: d2_cut04 (the smallest worst loss; recommend.by_ratio)"
