"""What every ``kedro run`` cost and got: stage seconds and peak memory as MLflow metrics, the trained models as
MLflow models, the kept subset as an MLflow dataset input, and a short summary printed at the end.

A stage is a pipeline namespace (``erm_training``, ...), logged under a short name (``time.erm``). A node's time
runs from the first load of its inputs to the last save of its outputs, so reading and writing files count.
Peak memory is this process's resident peak (``memory.peak_mb``; Dask workers are other processes), and
``memory.<stage>_mb`` that peak as it stood when the stage ended, which shows the stage that raised it.
"""

from __future__ import annotations

import hashlib
import logging
import resource
import sys
import time
import warnings
from typing import Any

import numpy as np
from kedro.framework.hooks import hook_impl

from dataset_pruning.data import kept_indices
from dataset_pruning.reporting import run_label
from dataset_pruning.startup import return_free_memory

log = logging.getLogger(__name__)

# pipeline namespace -> the short name of its time metric
STAGES = {
    "ingest": "ingest",
    "erm_training": "erm",
    "influence_scoring": "scoring",
    "optimization_selection": "selection",
    "retraining": "retraining",
    "nas_proxy_eval": "nas",
    "sweep": "sweep",
    "report": "report",
}
MODELS = ("erm_model", "retrained_model")


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB (``ru_maxrss`` is kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_of(node_name: str) -> str:
    namespace = node_name.split(".", 1)[0]
    return STAGES.get(namespace, namespace)


def held_out_record(outputs: dict[str, Any]) -> dict[str, Any] | None:
    """What a ``held_out_choice`` scorer measured and chose ({chosen, accuracy: {candidate: validation accuracy},
    validation, ratio, budget}), from a node's outputs with its ``sample_scores``; None otherwise."""
    scores = outputs.get("sample_scores")
    info = scores.get("info") if isinstance(scores, dict) else None
    return info.get("held_out") if isinstance(info, dict) else None


def held_out_line(record: dict[str, Any]) -> str:
    """One line: the held-out choice, each candidate's accuracy on the held-out part, and with ``switch_z`` the
    best one's lead over the first listed (McNemar's z), which decides between the two."""
    measured = ", ".join(f"{name} {100 * accuracy:.1f} %" for name, accuracy in record["accuracy"].items())
    splits = record.get("splits", 1)
    averaged = f", mean of {splits} splits" if splits > 1 else ""
    first = next(iter(record["accuracy"]))  # the candidates in their listed order
    lead = ""
    if record.get("switch_z") and record["best"] != first:
        within = record["chosen"] == first
        lead = (f"; {record['best']}'s lead over {first}: McNemar z {record['z']:.2f} {'<=' if within else '>'} "
                f"{record['switch_z']:g}{', within noise' if within else ''}")
    return (f"held-out choice: {record['chosen']} (accuracy on {100 * record['validation']:.0f} % of the training "
            f"set held out{averaged}, {record['budget']} budget: {measured}{lead})")


def format_summary(metrics: dict[str, Any] | None, n: int | None, times: dict[str, float], peak_mb: float,
                   label: str, run: tuple[str, str] | None, store: str, lineage: dict[str, str] | None = None,
                   recommended: dict[str, Any] | None = None, held_out: dict[str, Any] | None = None) -> str:
    """The lines printed at the end of a run: what was removed (of ``n`` training samples) and what it cost in
    accuracy, eps/n and the gap, each stage's seconds and the peak memory, inputs of a mixed lineage (the
    ``lineage.*`` tags of hooks.RunIsolation), how to see the run in MLflow (``run``: (name, id) or None), and which
    method ``influence_scoring.method: recommended`` chose and why (``recommended``: {ratio, method, why}), and what
    a held-out choice measured (``held_out``: ``held_out_record``'s)."""
    lines = [f"== {label} =="]
    if recommended:
        lines.append(f"recommended method at ratio {recommended['ratio']}: {recommended['method']} "
                     f"({recommended['why']}; recommend.by_ratio)")
    if held_out:
        lines.append(held_out_line(held_out))
    if lineage and lineage.get("lineage.mixed") == "true":
        lines.append(f"inputs from MLflow runs {lineage.get('lineage.runs')} (mixed lineage"
                     + (f": {lineage['lineage.differences']}" if lineage.get("lineage.differences") else "") + ")")
    if metrics:
        removed = f"{round(metrics['ratio'] * n)} / {n}" if n else "a fraction"
        full, pruned = 100 * metrics["full_test_accuracy"], 100 * metrics["pruned_test_accuracy"]
        lines += [
            f"removed {removed} ({100 * metrics['ratio']:.1f} %): test accuracy {full:.2f} % full, "
            f"{pruned:.2f} % pruned ({pruned - full:+.2f} points)",
            f"eps/n {metrics['eps_over_n']:.3g}, generalization gap (test loss pruned - full) "
            f"{metrics['generalization_gap']:+.4f}",
        ]
    if times:
        spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items())
        lines.append(f"time: {spent}; total {sum(times.values()):.1f} s; peak memory {peak_mb:.0f} MB")
    if run is not None:
        lines.append(f"MLflow run {run[0]!r} ({run[1]}): mlflow ui --backend-store-uri {store}")
    return "\n".join(lines)


class RunReport:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._reset()

    def _reset(self) -> None:
        self.spans: dict[str, list[float]] = {}  # node name -> [first event, last event]
        self.memory: dict[str, float] = {}  # stage -> the process's peak resident MB when it ended
        self.metrics: dict[str, Any] | None = None
        self.held_out: dict[str, Any] | None = None
        self.n: int | None = None
        self.subset_logged = False  # retrain and measure_pruning both read the kept set: log it once

    @hook_impl
    def after_context_created(self, context) -> None:
        self.params = context.params

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._reset()

    def _mark(self, node) -> None:
        if node is None:
            return
        now = time.perf_counter()
        span = self.spans.setdefault(node.name, [now, now])
        span[1] = now
        self.memory[stage_of(node.name)] = peak_memory_mb()

    @hook_impl
    def before_dataset_loaded(self, node) -> None:
        self._mark(node)

    @hook_impl
    def before_node_run(self, node) -> None:
        self._mark(node)
        return_free_memory()  # what the nodes before freed, not stacked under this one's large arrays

    @hook_impl
    def after_dataset_saved(self, node) -> None:
        self._mark(node)

    @hook_impl
    def after_node_run(self, node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        self._mark(node)
        if "pruning_metrics" in outputs:
            self.metrics = outputs["pruning_metrics"]
        self.held_out = held_out_record(outputs) or self.held_out
        train_set = outputs.get("train_set", inputs.get("train_set"))
        if train_set is not None:
            self.n = len(train_set)
        import mlflow

        if mlflow.active_run() is None:
            return
        for name in MODELS:
            if name in outputs:
                _log_model(name, outputs[name])
        if "train_set" in inputs and "removed_indices" in inputs and not self.subset_logged:
            _log_kept_subset(inputs["train_set"], inputs["removed_indices"])
            self.subset_logged = True

    def times(self) -> dict[str, float]:
        """Seconds per stage, in the order the stages ran."""
        out: dict[str, float] = {}
        for name, (first, last) in self.spans.items():
            out[stage_of(name)] = out.get(stage_of(name), 0.0) + last - first
        return out

    def _log_costs(self) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        times = self.times()
        mlflow.log_metrics({**{f"time.{stage}": seconds for stage, seconds in times.items()},
                            **{f"memory.{stage}_mb": mb for stage, mb in self.memory.items()},
                            "time.total": sum(times.values()), "memory.peak_mb": peak_memory_mb()})

    @hook_impl(tryfirst=True)  # before kedro-mlflow ends the run
    def after_pipeline_run(self) -> None:
        import mlflow

        self._log_costs()
        active = mlflow.active_run()
        lineage = mlflow.get_run(active.info.run_id).data.tags if active is not None else None
        run = (lineage.get("mlflow.runName", active.info.run_name), active.info.run_id) if active is not None else None
        store = f"sqlite:///{self.params.get('mlflow_db') or 'mlflow.db'}"
        chosen = (self.params.get("influence_scoring") or {}).get("recommended")
        label = run[0] if run is not None else run_label(self.params)  # the run's name: a sweep's is sweep·<preset>
        summary = format_summary(self.metrics, self.n, self.times(), peak_memory_mb(), label, run,
                                 store, lineage, chosen if self.metrics else None,  # only where it selected
                                 self.held_out if self.metrics else None)
        print(summary, file=sys.stdout, flush=True)

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self) -> None:
        self._log_costs()  # a failed run still says what its stages cost


def _log_model(name: str, saved: dict[str, Any]) -> None:
    """A trained model (catalog form: spec + state_dict) as an MLflow model of the active run."""
    import mlflow
    import torch

    from dataset_pruning.training import load_model

    model = load_model(saved)
    example = np.zeros((2, *saved["spec"]["input_shape"]), dtype=np.float32)  # pt2 (torch.export) traces on it;
    # a batch of 2 keeps the batch dimension dynamic (a batch of 1 would fix it to 1)
    with _quiet("mlflow"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pytorch.log_model(model, name=name, input_example=example,
                                 pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])


def _log_kept_subset(train_set, removed) -> None:
    """The kept samples as an MLflow dataset input (context ``training-subset``), beside the full training set."""
    import mlflow
    from mlflow.data import from_numpy

    kept = kept_indices(len(train_set), removed)
    digest = hashlib.sha256(np.ascontiguousarray(kept).tobytes()).hexdigest()[:16]
    source = from_numpy(train_set.x[kept].numpy(), targets=train_set.y[kept].numpy(), name=f"{train_set.name}-kept",
                        digest=digest)
    mlflow.log_input(source, context="training-subset")


class _quiet:
    """Raise a logger's level for a block: MLflow's model logging warns about signatures we do not infer."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level, self.logger.level = self.logger.level, logging.ERROR

    def __exit__(self, *exc) -> None:
        self.logger.level = self.level
