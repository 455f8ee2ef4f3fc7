"""Project hooks: what makes every figure of a run the product of that run's own parameters and data.

- ``ValidateParameters``: every parameter block, the top-level keys and the output folders, before any node runs;
  errors of the project print as one short message (``errors.install``).
- ``RunIsolation``: within a run, each versioned dataset loads the version this run saved (Kedro would load the
  newest on disk, which a concurrent run may have written); an input the run does not produce is pinned at the
  start (the user's ``--load-versions``, the version written by MLflow run ``source_run``, or the newest), logged
  with the run that wrote it, and checked against the run's data before any node runs. Each saved version gets a
  ``provenance.json`` beside it: MLflow run id, parameters, data fingerprint.
- ``RunTracking``: the MLflow run's name and tags say what it is; the training set is logged as an MLflow input;
  an interrupted run ends KILLED (kedro-mlflow ends a failed one FAILED, an interrupted one would stay FINISHED).
- ``BatchedMlflowHook``: kedro-mlflow's hook, with each node's parameters logged in one batch.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import shutil
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset, DataCatalog
from kedro.io.core import VERSION_FORMAT
from kedro_mlflow.framework.hooks import MlflowHook
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

from dataset_pruning import errors
from dataset_pruning.config import (RUNTIME_PARAMETERS, block, check_selection_budget, check_writable,
                                    validate_parameters)
from dataset_pruning.catalog.storage import damaged_file
from dataset_pruning.provenance import describe, fingerprint
from dataset_pruning.recommendation import HELD_OUT, settings
from dataset_pruning.reporting import run_fields, run_label
from dataset_pruning.run_report import held_out_record
from dataset_pruning.tensor_files import write_atomically

log = logging.getLogger(__name__)
PROVENANCE_FILE = "provenance.json"


class ValidateParameters:
    @hook_impl(wrapper=True)  # around kedro-mlflow's hook, which creates the MLflow store
    def after_context_created(self, context):
        errors.install()
        params = context.params
        folders = [_data_root(params, context), Path(params.get("mlflow_db") or "mlflow.db").absolute().parent]
        validate_parameters(params, write_to=folders)
        with _store_lock(context):
            return (yield)


def _data_root(params: dict[str, Any], context) -> Path:
    data_root = Path(params.get("data_root") or "data")
    return data_root if data_root.is_absolute() else context.project_path / data_root


def _store_lock(context):
    """A file lock beside the sqlite MLflow store of mlflow.yml, held while kedro-mlflow creates and migrates the
    store and its experiment: first runs started together in a fresh folder would race to create the tables."""
    loader = context.config_loader
    loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"])  # as kedro-mlflow's
    try:
        uri = str(((loader["mlflow"] or {}).get("server") or {}).get("mlflow_tracking_uri") or "")
    except MissingConfigException:
        uri = ""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    return FileLock(f"{uri.removeprefix('sqlite:///')}.lock")


# ----------------------------------------------------------------------------------------------- versions
def _versioned(catalog, name: str) -> AbstractVersionedDataset | None:
    if name.startswith("params:") or name == "parameters" or name not in catalog:
        return None
    dataset = catalog[name]
    return dataset if isinstance(dataset, AbstractVersionedDataset) else None


def _version_folder(dataset: AbstractVersionedDataset, version: str) -> Path:
    return Path(dataset._get_versioned_path(version)).parent  # <filepath>/<version>/<file name>


def read_provenance(dataset: AbstractVersionedDataset, version: str) -> dict[str, Any] | None:
    path = _version_folder(dataset, version) / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise damaged_file(path, error) from error


def _versions_root(dataset: AbstractVersionedDataset) -> Path:
    return _version_folder(dataset, "x").parent


def _versions_on_disk(dataset: AbstractVersionedDataset) -> list[str]:
    """The versions whose file is there (a folder left by a failed save is not a version), oldest first."""
    root = _versions_root(dataset)
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [v for v in found if Path(dataset._get_versioned_path(v)).exists()]


CLAIMS = ".save_versions"  # under the data root: the save versions of runs in progress, and their lock


def _claim_save_version(data_root: Path, roots: list[Path], version: str) -> str:
    """A save version that no run in progress holds and no version folder in ``roots`` has: Kedro's is the
    session's start to the millisecond, which two runs started together share (the second would fail at its first
    save). Under a lock, the next free millisecond from ``version`` on, held as an empty folder
    ``<data_root>/.save_versions/<version>`` until the run ends (``_release_save_version``)."""
    if not roots:
        return version
    claims = data_root / CLAIMS
    claims.mkdir(parents=True, exist_ok=True)
    with FileLock(claims / ".lock"):
        while (claims / version).exists() or any((root / version).exists() for root in roots):
            later = datetime.strptime(version, VERSION_FORMAT) + timedelta(milliseconds=1)
            version = later.strftime(VERSION_FORMAT)[:-4] + "Z"  # Kedro's form: milliseconds
        (claims / version).mkdir()
    return version


def _release_save_version(data_root: Path, version: str | None) -> None:
    """Once a run has ended its version folders say which versions are taken."""
    if version:
        with contextlib.suppress(OSError):
            (data_root / CLAIMS / version).rmdir()


def _version_of_run(name: str, dataset: AbstractVersionedDataset, run_id: str) -> str:
    for version in reversed(_versions_on_disk(dataset)):
        if (read_provenance(dataset, version) or {}).get("run_id") == run_id:
            return version
    raise ValueError(
        f"source_run {run_id}: no version of {name} was written by that MLflow run (look the run id up in "
        f"`mlflow ui`, or pin a version with --load-versions {name}:<version>)"
    )


def _run_status(run_id: str | None) -> str | None:
    """The MLflow status of ``run_id`` in the active store (FINISHED, FAILED, KILLED, RUNNING), None if unknown."""
    from mlflow.tracking import MlflowClient

    if not run_id:
        return None
    try:
        return MlflowClient().get_run(run_id).info.status
    except Exception:  # not in this store
        return None


def _newest_finished(name: str, dataset: AbstractVersionedDataset) -> str:
    """The newest version of ``name`` written by an MLflow run that ended FINISHED (a failed or killed run's
    outputs, and files without provenance, are never read unless pinned)."""
    on_disk = _versions_on_disk(dataset)
    if not on_disk:
        raise ValueError(
            f"this pipeline reads {name}, which no earlier run wrote (under {_versions_root(dataset)}); "
            "run the stage that writes it first, e.g. kedro run --pipeline=prune"
        )
    for version in reversed(on_disk):
        if _run_status((read_provenance(dataset, version) or {}).get("run_id")) == "FINISHED":
            return version
    newest = read_provenance(dataset, on_disk[-1]) or {}
    status = _run_status(newest.get("run_id")) or "not in this MLflow store"
    raise ValueError(
        f"this pipeline reads {name}, but none of its {len(on_disk)} version(s) under {_versions_root(dataset)} was "
        f"written by a run that finished (the newest, {on_disk[-1]}, by MLflow run {newest.get('run_id')}: "
        f"{status}); rerun the stage that writes it, e.g. kedro run --pipeline=prune, or pin a version "
        f"(--load-versions {name}:<version>)"
    )


def _blocks_that_make(name: str) -> set[str]:
    """The parameter blocks read by the nodes that produce ``name`` and by everything upstream of them, in any
    registered pipeline."""
    from kedro.framework.project import pipelines

    blocks = set()
    for pipeline in pipelines.values():
        if name in pipeline.all_outputs():
            for source in pipeline.to_outputs(name).inputs():
                if source.startswith("params:"):
                    blocks.add(source.removeprefix("params:").split(".")[0])
                elif source == "parameters":
                    blocks.add("*")
    return blocks


def _differences(theirs: Any, ours: Any, where: str) -> list[str]:
    if isinstance(theirs, dict) and isinstance(ours, dict):
        return [line for key in sorted(set(theirs) | set(ours), key=str)
                for line in _differences(theirs.get(key), ours.get(key), f"{where}.{key}")]
    return [] if theirs == ours else [f"{where} = {theirs!r} there, {ours!r} here"]


def _lineage_differences(name: str, record: dict, params: dict, inputs_read: dict) -> list[str]:
    """How input ``name`` (its provenance ``record``) differs from this run: parameters on the blocks that made it,
    and inputs it was computed from that this run reads at another version."""
    recorded = record.get("parameters") or {}
    blocks = _blocks_that_make(name)
    blocks = set(recorded) if "*" in blocks else blocks
    found = [line for block in sorted(blocks & set(recorded))
             for line in _differences(settings(block, recorded[block]), settings(block, params.get(block)), block)]
    for source, used in (record.get("inputs_read") or {}).items():
        if source in inputs_read and inputs_read[source]["version"] != used.get("version"):
            found.append(f"it was computed from {source} version {used.get('version')}, this run reads "
                         f"{inputs_read[source]['version']}")
    return found


def _pin_versions(catalog, versions: dict[str, str], save_version: str) -> None:
    """Rebuild each dataset of ``versions`` from its catalog entry, loading that version."""
    config = catalog.config_resolver.config
    pinned = DataCatalog.from_config({name: config[name] for name in versions}, load_versions=versions,
                                     save_version=save_version)
    quiet = logging.getLogger("kedro.io.data_catalog")
    level, quiet.level = quiet.level, logging.ERROR  # "Replacing dataset" is what we mean to do
    catalog._save_version = save_version  # it refuses datasets of another save version; Kedro 1.7 has no setter
    try:
        for name in versions:
            catalog[name] = pinned[name]
    finally:
        quiet.level = level


class RunIsolation:
    def __init__(self) -> None:
        self.data_root, self.claimed = Path("data"), None
        self._reset()

    def _reset(self) -> None:
        _release_save_version(self.data_root, self.claimed)
        self.save_version, self.claimed, self.run_id, self.params, self.fingerprint = None, None, None, {}, None
        self.catalog, self.inputs_read, self.selection, self.produced = None, {}, None, set()

    @hook_impl
    def after_context_created(self, context) -> None:
        self.params = context.params
        self.data_root = _data_root(self.params, context)

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has started the MLflow run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        try:
            self._pin_and_check(run_params, pipeline, catalog)
        except BaseException:  # Kedro calls no on_pipeline_error for a hook's error: the run would stay open
            end_runs("FAILED")
            _release_save_version(self.data_root, self.claimed)
            self.claimed = None
            raise

    def _pin_and_check(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        import mlflow

        active = mlflow.active_run()
        self.save_version, self.run_id, self.catalog = run_params["run_id"], active and active.info.run_id, catalog
        self.fingerprint, self.inputs_read = None, {}
        self.selection = block("optimization_selection", self.params["optimization_selection"]) if any(
            n.name == "optimization_selection.select_samples" for n in pipeline.nodes) else None
        pins, source_run = run_params.get("load_versions") or {}, (run_params.get("runtime_params") or {}).get(
            "source_run")
        produced, versions = pipeline.all_outputs(), {}
        self.produced = {name for name in produced if _versioned(catalog, name) is not None}
        _check_output_folders(catalog, produced)
        self.save_version = self.claimed = _claim_save_version(
            self.data_root, [_versions_root(_versioned(catalog, name)) for name in sorted(self.produced)],
            self.save_version)
        for name in sorted(pipeline.datasets()):
            dataset = _versioned(catalog, name)
            if dataset is None:
                continue
            if name in pins:
                versions[name] = pins[name]
            elif name in produced:
                versions[name] = self.save_version
            elif source_run:
                versions[name] = _version_of_run(name, dataset, source_run)
            else:
                versions[name] = _newest_finished(name, dataset)
        _pin_versions(catalog, versions, self.save_version)
        for name in sorted(set(versions) - produced):
            record = read_provenance(_versioned(catalog, name), versions[name]) or {}
            self.inputs_read[name] = {"version": versions[name], **record}
            log.info("reads %s version %s, written by MLflow run %s", name, versions[name], record.get("run_id"))
            if active:
                mlflow.set_tags({f"input.{name}.version": versions[name],
                                 f"input.{name}.run_id": str(record.get("run_id"))})
        self._check_lineage(pinned=set(pins) | (set(versions) - produced if source_run else set()))
        self._check_inputs_agree()

    def _check_lineage(self, pinned: set[str]) -> None:
        """Inputs from several runs are said (log, tags); an input whose recorded parameters differ from this run's
        on the blocks that made it, or that was computed from another version of an input read here, stops the run
        unless the user pinned it (then the mixed lineage is recorded)."""
        import mlflow

        runs = sorted({str(record.get("run_id")) for record in self.inputs_read.values()})
        differences = {name: _lineage_differences(name, record, self.params, self.inputs_read)
                       for name, record in self.inputs_read.items()}
        differences = {name: found for name, found in differences.items() if found}
        refused = sorted(set(differences) - pinned)
        if refused:
            name, record = refused[0], self.inputs_read[refused[0]]
            raise ValueError(
                f"{name} (version {record['version']}, MLflow run {record.get('run_id')}) does not belong to this run: "
                f"{'; '.join(differences[name][:3])}; nothing was run. Run with the parameters it was made with, "
                f"rerun the stages that write {name}, or pin it to use it anyway (--load-versions "
                f"{name}:{record['version']}, or --params source_run={record.get('run_id')})"
            )
        lines = [f"{name}: {line}" for name, found in differences.items() for line in found]
        if len(runs) > 1 or lines:
            log.warning("inputs come from %d MLflow run(s) (%s)%s", len(runs), ", ".join(runs),
                        "; pinned inputs differ: " + "; ".join(lines) if lines else "")
        if mlflow.active_run() is not None and self.inputs_read:
            mixed = str(len(runs) > 1 or bool(lines)).lower()
            mlflow.set_tags({"lineage.runs": ", ".join(runs), "lineage.mixed": mixed,
                             **({"lineage.differences": "; ".join(lines)[:5000]} if lines else {})})

    def _check_inputs_agree(self) -> None:
        """Every input read from an earlier run was computed on the same data as the run's training set."""
        sources = {name: record["data"] for name, record in self.inputs_read.items() if record.get("data")}
        if self.fingerprint is not None:
            sources = {"train_set (this run)": self.fingerprint, **sources}
        if "train_set" in sources:
            sources = {"train_set": sources.pop("train_set"), **sources}
        names = list(sources)
        for name in names[1:]:
            if sources[name] != sources[names[0]]:
                raise ValueError(
                    f"{name} (version {self.inputs_read[name]['version']}) was computed on "
                    f"{describe(sources[name])}, but {names[0]} is {describe(sources[names[0]])}; nothing was run. "
                    f"Rerun the stages that write {name}, or pin versions of one run (--load-versions, "
                    "--params source_run=<MLflow run id>)"
                )
        if self.fingerprint is None and sources:
            self._data_known(sources[names[0]])

    def _data_known(self, print_: dict[str, Any]) -> None:
        self.fingerprint = print_
        if self.selection is not None:
            check_selection_budget(self.selection, print_["n"])

    @hook_impl
    def after_node_run(self, node, outputs: dict[str, Any]) -> None:
        """The training set just made: its fingerprint, then the checks that need n (before the outputs are saved
        and before any training)."""
        if "train_set" in outputs:
            ingest = self.params.get("ingest") or {}
            self._data_known(fingerprint(outputs["train_set"], ingest.get("seed"), ingest.get("options")))
            self._check_inputs_agree()

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node) -> None:
        if dataset_name == "train_set" and self.fingerprint is None:  # an old train_set without provenance
            self._data_known(fingerprint(data))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        dataset = _versioned(self.catalog, dataset_name) if self.catalog is not None else None
        if dataset is None:
            return
        record = {
            "dataset_name": dataset_name,
            "version": self.save_version,
            "run_id": self.run_id,
            "node": node.name,
            "data": self.fingerprint,
            "inputs_read": {name: {"version": r["version"], "run_id": r.get("run_id")}
                            for name, r in self.inputs_read.items()},
            "parameters": {key: value for key, value in self.params.items() if key not in RUNTIME_PARAMETERS},
        }
        folder = _version_folder(dataset, self.save_version)
        text = json.dumps(record, indent=1, default=str)
        write_atomically(folder / PROVENANCE_FILE, lambda temporary: Path(temporary).write_text(text))

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._reset()

    @hook_impl
    def on_pipeline_error(self) -> None:
        """A version folder of this run without provenance is a save that failed: removed, so nothing reads it."""
        for name in sorted(self.produced):
            folder = _version_folder(_versioned(self.catalog, name), self.save_version)
            if folder.is_dir() and not (folder / PROVENANCE_FILE).is_file():
                shutil.rmtree(folder, ignore_errors=True)
                log.info("removed %s, the partial version a failed save left", folder)
        self._reset()


def _check_output_folders(catalog, outputs: set[str]) -> None:
    """Every folder the run's outputs are saved under can be written, before the first node."""
    folders = set()
    for name in outputs:
        dataset = _versioned(catalog, name)
        if dataset is not None:
            folders.add(_versions_root(dataset))
        elif name in catalog and getattr(catalog[name], "_filepath", None):
            folders.add(Path(str(catalog[name]._filepath)).parent)
    problems = check_writable(sorted(folders))
    if problems:
        raise ValueError("this run cannot save its outputs, nothing was run:\n" + "\n".join(problems))


# ----------------------------------------------------------------------------------------------- tracking
def run_name(params: dict[str, Any], pipeline_names: list[str] | None) -> str:
    """``reporting.run_label`` for prune runs; other pipelines put their name first (``sweep·<preset>``,
    ``report``)."""
    names = [n for n in pipeline_names or [] if n not in ("prune", "__default__")]
    if names == ["sweep"]:
        return f"sweep·{(params.get('sweep') or {}).get('preset')}"
    if names == ["report"]:
        return "report"
    if names in (["recommend"], ["tolerance"]):  # the ratio is what they search: data set, model and what they ask
        fields, recommend = run_fields(params), params.get("recommend") or {}
        tolerance = recommend.get("tolerance") or {}
        asked = (f"delta{tolerance.get('delta')}·{tolerance.get('method')}" if names == ["tolerance"]
                 else "·".join(map(str, recommend.get("candidates") or [])))
        return "·".join([names[0], str(fields["dataset"]), str(fields["model"]), asked])
    return "·".join([*names, run_label(params)])


def run_tags(params: dict[str, Any], runtime_params: dict[str, Any]) -> dict[str, str]:
    fields = run_fields(params)
    tags = {key: str(fields[key]) for key in ("dataset", "model", "method", "solver", "ratio", "seed")}
    recommended = (params.get("influence_scoring") or {}).get("recommended")
    if recommended:  # influence_scoring.method: recommended, resolved by the config loader (recommendation.py)
        tags |= {"recommended.method": str(recommended["method"]), "recommended.why": str(recommended["why"])[:5000]}
    return {**tags, "params_given": json.dumps(runtime_params, sort_keys=True, default=str)}


class RunTracking:
    def __init__(self) -> None:
        self.params, self.running, self.input_logged = {}, False, False

    @hook_impl
    def after_context_created(self, context) -> None:
        self.params = context.params

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        import mlflow

        self.input_logged = False
        if mlflow.active_run() is None:
            return
        mlflow.set_tags({"mlflow.runName": run_name(self.params, run_params.get("pipeline_names")),
                         **run_tags(self.params, run_params.get("runtime_params") or {})})
        if not self.running:
            atexit.register(self._end_interrupted)  # runs before mlflow's own atexit, which would say FINISHED
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _interrupt)
        self.running = True

    def _end_interrupted(self) -> None:
        if self.running:
            end_runs("KILLED")
        self.running = False

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        """A held-out choice (scoring/held_out.py) is known once scored: its winner goes into the run's name
        (``held_out_choice:<winner>``) and tags (``recommended.chosen``, ``recommended.held_out_accuracy``)."""
        record = held_out_record(outputs)
        if record is None:  # every node but a held-out choice's scoring
            return
        import mlflow

        if mlflow.active_run() is None:
            return
        name = mlflow.get_run(mlflow.active_run().info.run_id).data.tags.get("mlflow.runName", "")
        mlflow.set_tags({"mlflow.runName": name.replace(HELD_OUT, f"{HELD_OUT}:{record['chosen']}"),
                         "recommended.chosen": record["chosen"],
                         "recommended.held_out_accuracy": json.dumps(record["accuracy"], sort_keys=True)})

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        self._log_input(dataset_name, data)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self._log_input(dataset_name, data)

    def _log_input(self, dataset_name: str, data: Any) -> None:
        import mlflow
        from mlflow.data import from_numpy

        if dataset_name != "train_set" or self.input_logged or mlflow.active_run() is None:
            return
        print_ = fingerprint(data, (self.params.get("ingest") or {}).get("seed"))
        source = from_numpy(data.x.numpy(), targets=data.y.numpy(), name=data.name, digest=print_["labels_sha256"])
        mlflow.log_input(source, context="training")
        self.input_logged = True

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.running = False

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.running = False  # kedro-mlflow ends the run as FAILED


def end_runs(status: str) -> None:
    """End the active MLflow run with ``status``: kedro-mlflow re-enters the run in every node, so it stands on
    mlflow's run stack several times, and each entry left would be ended FINISHED at exit."""
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class BatchedMlflowHook(MlflowHook):
    """kedro-mlflow's hook (settings.py registers it in place of the plugin's own instance) with a node's
    parameters logged in one MLflow batch: kedro-mlflow logs them one ``log_param`` call, one sqlite transaction,
    each (~3 ms x 420 keys per prune run: about 1 s of a 4-second run on 600 samples). Values over MLflow's length
    limit still take kedro-mlflow's ``long_params_strategy``."""

    _batch: dict[str, Any] | None = None

    @hook_impl  # an override is a new hook implementation: pluggy reads the marker on this function
    def before_node_run(self, node, catalog, inputs, is_async) -> None:
        import mlflow

        self._batch = {}
        try:
            super().before_node_run(node, catalog, inputs, is_async)
            if self._batch:
                mlflow.log_params(self._batch)
        finally:
            self._batch = None

    def _log_param(self, name: str, value: Any) -> None:
        if self._batch is None or len(str(value)) > MAX_PARAM_VAL_LENGTH:
            return super()._log_param(name, value)
        self._batch[name] = value
