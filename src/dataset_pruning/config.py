"""Typed parameter blocks, one per pipeline (``conf/base/parameters_<pipeline>.yml``).

Validated all together before any node runs (``hooks.ValidateParameters``), so a typo or an out-of-range value
stops a run before any training, with one message naming the key and what to do.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dataset_pruning.data import DATASETS
from dataset_pruning.models import MODELS
from dataset_pruning.runtime import check_device
from dataset_pruning.options import option_problems
from dataset_pruning.scoring import SCORERS, scorer_needs, scorer_output
from dataset_pruning.scoring.influence import LISSA_DEFAULTS, lissa_inverse_hvp
from dataset_pruning.scoring.held_out import HELD_OUT, candidate_problems
from dataset_pruning.scoring.last_layer import check_curvature
from dataset_pruning.selection import RULES, SOLVERS, check_rule_options, rule_needs
from dataset_pruning.selection.objective import build_solver, removal_count
from dataset_pruning.training import TrainingConfig
from dataset_pruning.training_trace import TRACE_PARTS, part_with_recorder


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _name_in(registry: Any) -> Any:
    """A str field that must name an entry of ``registry`` (an unknown name: the closest and the known ones)."""
    def known(name: str) -> str:
        registry.get(name)
        return name

    return Annotated[str, AfterValidator(known)]


DatasetName, ModelName, ScorerName = _name_in(DATASETS), _name_in(MODELS), _name_in(SCORERS)
SolverName, RuleName = _name_in(SOLVERS), _name_in(RULES)
Device = Annotated[str, AfterValidator(check_device)]


class IngestParams(_Block):
    dataset: DatasetName = "mnist1d"
    root: str = "data/01_raw"
    seed: int = 42
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options(self) -> "IngestParams":
        DATASETS.check(self.dataset, self.options, "options")  # a misspelt option stops the run here, not at ingest
        return self


class ModelParams(_Block):
    name: ModelName = "cnn1d"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options(self) -> "ModelParams":
        MODELS.check(self.name, self.options, "options")
        return self


class TrainingParams(_Block):
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    augment: bool = False
    amp: bool = True
    seed: int = 0
    device: Device = "auto"

    def recipe(self) -> TrainingConfig:
        return TrainingConfig(**self.model_dump())


class TraceParams(_Block):
    """What ERM records in ``training_trace`` for the scorers that read the trajectory (scoring/trace.py)."""

    steps: bool = False  # every step's parameters, batch and lr: sgd_influence
    checkpoints: int = Field(0, ge=0)  # evenly spaced epoch-end checkpoints: moso
    dynamics: bool = False  # per-epoch training-pass correctness and probabilities: forgetting, dynamic_uncertainty, tdds
    probability_epochs: int = Field(30, ge=2)  # epochs of full softmax outputs kept for tdds
    max_step_bytes: float = Field(2e9, gt=0)  # refuse to record steps above this size
    parts: list[str] = Field(default_factory=list)  # parts with their own recorder (training_trace.trace_part)

    @field_validator("parts")
    @classmethod
    def _parts(cls, v: list[str]) -> list[str]:
        for name in v:
            part_with_recorder(name)
        return v


class ErmTrainingParams(_Block):
    model: ModelParams = Field(default_factory=ModelParams)
    training: TrainingParams = Field(default_factory=TrainingParams)
    trace: TraceParams = Field(default_factory=TraceParams)

    @model_validator(mode="after")
    def _checkpoints(self) -> "ErmTrainingParams":
        if self.trace.checkpoints > self.training.epochs:
            raise ValueError(
                f"trace.checkpoints ({self.trace.checkpoints}) cannot exceed training.epochs ({self.training.epochs})"
            )
        return self


def _check_options(method: str, options: dict[str, Any], where: str) -> None:
    """``SCORERS.check``, then LiSSA's nested options against ``lissa_inverse_hvp``'s signature, and the head's
    curvature against its projection (last-layer influence's options)."""
    SCORERS.check(method, options, where)
    if {"hessian", "projection_dim"} <= SCORERS.options(method).keys():
        try:
            check_curvature(**options)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    lissa = options.get("lissa")
    if isinstance(lissa, dict):
        unknown = sorted(set(lissa) - set(LISSA_DEFAULTS))
        problems = [f"{where}.lissa takes no option(s) {unknown}; it takes: {', '.join(LISSA_DEFAULTS)}"] if unknown \
            else option_problems(lissa_inverse_hvp, lissa, f"{where}.lissa.")
        if problems:
            raise ValueError("; ".join(problems))


class DaskParams(_Block):
    address: str | None = None  # an existing scheduler, e.g. tcp://10.0.0.5:8786; None starts a LocalCluster
    n_workers: int = Field(2, ge=1)  # LocalCluster worker processes (one thread each)


class ShardingParams(DaskParams):
    """Last-layer influence, and the method's scores when it has a sharded form (``sharded.SHARDED_METHODS``), in
    shards on Dask workers (scoring/sharded.py): the same S and scores as one process."""

    blocks_per_shard: int = Field(1, ge=1)  # a block is 16 batches of influence.batch_size rows


class ScoringParams(_Block):
    """``influence`` configures the last-layer S (always computed: eps is measured on it); ``method`` and
    ``options`` the score written to ``sample_scores`` (last_layer_influence: S itself, nothing recomputed)."""

    method: ScorerName = "last_layer_influence"
    options: dict[str, Any] = Field(default_factory=dict)
    influence: dict[str, Any] = Field(default_factory=dict)
    device: Device = "auto"
    seed: int | None = None  # None: the ERM training seed (erm_training.training.seed)
    # score a fraction of the samples with `method` and extrapolate the rest (scoring/extrapolation/);
    # fraction null (the default) is off
    extrapolation: dict[str, Any] | None = Field(default_factory=dict)
    sharding: ShardingParams | None = None  # null: one process; {n_workers: 2}: shards on a Dask LocalCluster
    # written by the config loader when method is 'recommended' (recommendation.py): {ratio, method, why}
    recommended: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, values: Any) -> Any:
        if isinstance(values, dict) and "large_head" in values:
            raise ValueError("large_head is now an option of influence: set influence.hessian: ekfac and "
                             "influence.projection_dim: 64 (docs/scoring.md, 'Large heads'), and remove large_head")
        return values

    @model_validator(mode="after")
    def _extrapolation(self) -> "ScoringParams":
        from dataset_pruning.scoring.extrapolation import check_extrapolation

        check_extrapolation(self.extrapolation)  # an unknown key or a bad value: a ValueError naming the valid ones
        self.extrapolation = dict(self.extrapolation or {})
        return self

    @model_validator(mode="after")
    def _options(self) -> "ScoringParams":
        _check_options("last_layer_influence", self.influence, "influence")
        if self.method == "last_layer_influence" and self.options:
            raise ValueError(
                "method last_layer_influence reuses influence_vectors: put its options under "
                "influence_scoring.influence, and leave options empty"
            )
        _check_options(self.method, self.options, "options")
        if self.sharding is not None and (self.influence.get("hessian", "exact") != "exact"
                                          or self.influence.get("projection_dim") is not None):
            raise ValueError("influence_scoring.sharding computes the exact Hessian's S: set influence.hessian: exact "
                             "and projection_dim: null, or sharding: null")
        extrapolated = (self.extrapolation or {}).get("fraction") is not None
        exact_norms = (self.options.get("hessian", "exact") == "exact" and self.options.get("indices") is None
                       and self.options.get("projection_dim") is None)
        if self.sharding is not None and self.method == "influence_norm" and not extrapolated and not exact_norms:
            raise ValueError("influence_scoring.sharding computes influence_norm with the exact Hessian on every "
                             "sample: set options.hessian: exact, no options.indices nor projection_dim, or "
                             "sharding: null")
        return self


class SelectionParams(_Block):
    problem: Literal["cardinality", "generalization"] = "cardinality"
    solver: SolverName = "hybrid"
    ratio: float | None = None
    eps: float | None = None
    seed: int = 0
    class_balanced: bool = False  # Eq. 4: remove ratio * n_c per class; Eq. 3: keep class_floor of each class
    class_floor: float = Field(0.0, ge=0.0, le=1.0)
    projection_dim: int | None = Field(None, ge=1)  # solve on a random projection of S to this many dimensions
    bound_iterations: int = Field(100, ge=0)  # relaxation bound reported beside the solve; 0 skips it
    bound_tolerance: float | None = Field(0.005, ge=0)  # Eq. 4: stop once 5 iterations raise it by < this fraction
    options: dict[str, Any] = Field(default_factory=dict)
    # selection/rules: score (the scorer's end; vectors: the solver) | ccs | ratio_aware | moderate | beta
    rule: RuleName = "score"
    rule_options: dict[str, Any] = Field(default_factory=dict)  # the rule's keyword options (e.g. ccs: beta, strata)
    vector_score: Literal["norm", "direction"] = "norm"  # how vectors become one score for a rule other than score
    groups: Literal["class", "strata", "clusters"] | None = None  # budget groups, every rule and solver
    n_groups: int = Field(10, ge=1)
    group_budget: Literal["proportional", "coverage"] = "proportional"

    @model_validator(mode="after")
    def _budget(self) -> "SelectionParams":
        if self.problem == "cardinality":
            if self.ratio is None or not 0.0 < self.ratio < 1.0:
                raise ValueError(
                    f"ratio must lie strictly between 0 and 1 (the fraction removed) for problem 'cardinality' "
                    f"(Eq. 4), got {self.ratio}"
                )
        elif self.eps is None or not self.eps >= 0.0:
            raise ValueError(f"eps must be >= 0 for problem 'generalization' (Eq. 3), got {self.eps}")
        build_solver(self.solver, self.options)  # unknown or bad solver options stop the run here, before training
        check_rule_options(self.rule, self.rule_options)  # likewise the rule's options, against its signature
        if self.rule != "score" and self.problem != "cardinality":
            raise ValueError(
                f"rule {self.rule!r} keeps samples at a ratio: use problem 'cardinality', or rule 'score' for Eq. 3"
            )
        return self


class RetrainingParams(_Block):
    model: ModelParams | None = None  # None: the ERM architecture
    training: TrainingParams | None = None  # None: the ERM recipe
    budget: Literal["epochs", "steps"] = "epochs"  # epochs: the paper's; steps: as many SGD steps as ERM took


def _nas_training() -> TrainingParams:
    return TrainingParams(epochs=8, batch_size=64, lr=0.05)


class NasParams(_Block):
    sample_size: int | None = Field(16, ge=1, le=720)  # architectures drawn from the 720; None = all
    seed: int = 0  # the architecture sample and the random proxy
    width_scale: float = Field(1.0, gt=0)  # channels x this; 1 = the paper's space
    top_k: int = Field(10, ge=2)
    executor: Literal["dask", "serial"] = "dask"
    torch_threads: int = Field(1, ge=1)  # per evaluation, in both executors (same numbers serial or on Dask)
    dask: DaskParams = Field(default_factory=DaskParams)
    training: TrainingParams = Field(default_factory=_nas_training)  # the one recipe of every evaluation


class SweepMethod(_Block):
    """How one method of the sweep chooses what to remove: a scorer (with options) and the selection options
    (optimization_selection's keys but ratio and eps, which come from the grid). ``scorer: recommended``: at each
    ratio the method ``recommend.by_ratio`` gives there (recommendation.py), nothing else set."""

    scorer: ScorerName | Literal["recommended"]
    options: dict[str, Any] = Field(default_factory=dict)
    selection: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "SweepMethod":
        if self.scorer == "recommended":
            if self.options or self.selection:
                raise ValueError("scorer 'recommended' takes its options and selection from recommend.by_ratio")
            return self
        _check_options(self.scorer, self.options, "options")
        grid_keys = sorted({"ratio", "eps"} & set(self.selection))
        if grid_keys:
            raise ValueError(f"selection sets {grid_keys}, which come from the preset's ratios / eps")
        problem = self.selection.get("problem", "cardinality")
        SelectionParams(**{**self.selection, "ratio": 0.5 if problem == "cardinality" else None,
                           "eps": 0.0 if problem != "cardinality" else None})
        if scorer_output(self.scorer) == "scalar" and problem != "cardinality":
            raise ValueError(scalar_scores_need_cardinality(self.scorer))
        if message := columns_missing(self.selection.get("rule", "score"), self.scorer):
            raise ValueError(message)
        return self


def columns_missing(rule: str, scorer: str) -> str | None:
    """Why rule ``rule`` cannot select on scorer ``scorer``'s output (it reads a per-sample column the scorer does
    not give), or None."""
    missing = [c for c in rule_needs(rule) if c not in SCORERS.meta(scorer)["columns"]]
    if not missing:
        return None
    givers = [name for name in SCORERS.names() if set(rule_needs(rule)) <= set(SCORERS.meta(name)["columns"])]
    return (f"rule {rule!r} reads the per-sample {', '.join(missing)}, which scorer {scorer!r} does not give; "
            f"use it with {' or '.join(givers) or 'a scorer that does'}")


class ModelPair(_Block):
    prune: ModelParams  # the model ERM trains and the scorers read
    retrain: ModelParams | None = None  # None: the same architecture (cross-architecture presets set another)


class _CellRecipe(_Block):
    """What cells of the sweep's grid train: ``models`` (empty: erm_training.model, retrained as itself; a name
    alone: that model, retrained as itself) and ``training`` (overrides of erm_training.training)."""

    models: list[ModelPair] = Field(default_factory=list)
    training: dict[str, Any] = Field(default_factory=dict)

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v):
        return [{"prune": {"name": m}} if isinstance(m, str) else m for m in v]

    @model_validator(mode="after")
    def _recipe(self) -> "_CellRecipe":
        TrainingParams(**self.training)  # unknown or bad recipe keys stop here
        for pair in self.models:
            pair.retrain = pair.retrain or pair.prune
        return self


class RecommendEntry(SweepMethod):
    """A row of ``recommend.by_ratio``: the method used up to removal ratio ``up_to`` (a sweep method's form)."""

    scorer: ScorerName
    up_to: float = Field(gt=0, le=1)
    method: str
    why: str = ""


class ToleranceParams(_Block):
    """``kedro run --pipeline=tolerance``: the largest ratio of step, 2 step, ..., max_ratio whose validation
    accuracy is within ``delta`` (a fraction: 0.01 = 1 point) of the full data's, for ``method`` (sweep.methods)."""

    delta: float = Field(0.01, gt=0, lt=1)
    step: float = Field(0.05, gt=0, lt=1)
    max_ratio: float = Field(0.95, gt=0, lt=1)
    method: str = "recommended"


class RecommendParams(_CellRecipe):
    """``influence_scoring.method: recommended`` chooses from ``by_ratio`` (recommendation.py); ``kedro run
    --pipeline=recommend`` measures ``candidates`` (sweep.methods) at ``ratios`` on a ``validation`` split, ``seeds``
    each, with the sweep's ``models`` / ``training`` overrides; ``tolerance``: the tolerance pipeline."""

    by_ratio: list[RecommendEntry] = Field(min_length=1)
    candidates: list[str] = Field(default_factory=lambda: ["random", "eq4", "tdds", "herding", "kernel_herding", "dual",
                                                           "dual_beta"])
    ratios: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    validation: float = Field(0.2, gt=0, lt=1)
    tolerance: ToleranceParams = Field(default_factory=ToleranceParams)

    @model_validator(mode="after")
    def _ordered(self) -> "RecommendParams":
        ends = [entry.up_to for entry in self.by_ratio]
        if ends != sorted(set(ends)) or ends[-1] != 1.0:
            raise ValueError(f"by_ratio's up_to must increase and end at 1.0, got {ends}")
        return self


class SweepPreset(_CellRecipe):
    datasets: list[DatasetName] = Field(default_factory=lambda: ["mnist1d"])
    methods: list[str]
    ratios: list[float] = Field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9])
    eps: list[float] = Field(default_factory=list)  # the Eq. 3 methods' budgets
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    budgets: list[Literal["epochs", "steps"]] = Field(default_factory=lambda: ["epochs"])
    track_accuracy: bool = False  # test accuracy after every retraining epoch (time to a target accuracy)
    target_accuracy: float | None = Field(None, gt=0, le=1)
    theorem1_random: bool = False  # beside every Eq. 3 cell, a random removal of the same size
    # > 0: every cell is measured on this fraction of the training set (stratified, held out from ERM, scoring and
    # retraining) instead of the test set: for choosing a method or its hyper-parameters (docs/selection.md)
    validation: float = Field(0.0, ge=0, lt=1)

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        bad = [r for r in v if not 0.0 < r < 1.0]
        if bad:
            raise ValueError(f"ratios must lie strictly between 0 and 1, got {bad}")
        return v


class SweepParams(_Block):
    preset: str = "default"
    presets: dict[str, SweepPreset]
    methods: dict[str, SweepMethod]
    force: bool = False  # recompute finished cells (otherwise read from the cache: an interrupted sweep resumes)
    executor: Literal["dask", "serial"] = "dask"
    torch_threads: int = Field(1, ge=1)
    dask: DaskParams = Field(default_factory=DaskParams)
    cache: str = "data/09_sweep"

    @model_validator(mode="after")
    def _preset(self) -> "SweepParams":
        if self.preset not in self.presets:
            raise ValueError(f"preset {self.preset!r} is not defined; {_closest(self.preset, self.presets)}presets: "
                             f"{', '.join(self.presets)}")
        for name, preset in self.presets.items():
            unknown = [m for m in preset.methods if m not in self.methods]
            if unknown:
                raise ValueError(f"preset {name!r} names methods {unknown} that sweep.methods does not define")
        return self

    def chosen(self) -> SweepPreset:
        return self.presets[self.preset]


class ReportParams(_Block):
    sweep_run: str | None = None  # the MLflow run id of one sweep; None: each preset's newest sweep run
    baseline: str = "random"  # the method every table sets beside the others
    target_accuracy: float = Field(0.9, gt=0, le=1)  # the efficiency table: epochs / seconds to this test accuracy


PARAMETER_BLOCKS: dict[str, type[_Block]] = {
    "ingest": IngestParams,
    "erm_training": ErmTrainingParams,
    "influence_scoring": ScoringParams,
    "optimization_selection": SelectionParams,
    "retraining": RetrainingParams,
    "nas_proxy_eval": NasParams,
    "sweep": SweepParams,
    "report": ReportParams,
    "recommend": RecommendParams,
}


def scalar_scores_need_cardinality(method: str) -> str:
    """Why a scalar-score method cannot drive Eq. 3 (said by parameter validation and by the select node)."""
    return (
        f"influence_scoring.method {method} gives scalar scores, selected by keeping one end at a ratio: "
        "use optimization_selection.problem: cardinality, or a vector method for Eq. 3"
    )


# Top-level runtime parameters besides the blocks: where outputs go, the MLflow store, which earlier run's
# outputs a stage that reads them (nas_proxy_eval, --from-nodes runs) takes (hooks.RunIsolation), and where the
# report writes its pages.
RUNTIME_PARAMETERS = ("data_root", "mlflow_db", "source_run", "docs_root")


def _closest(name: str, known) -> str:
    """"did you mean 'x'? " for the closest of ``known`` to ``name``, or ""."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown_blocks(parameters: dict[str, Any]) -> list[str]:
    known = [*PARAMETER_BLOCKS, *RUNTIME_PARAMETERS]
    problems = []
    for key in sorted(set(parameters) - set(known)):
        problems.append(f"  {key}: no such parameter block; {_closest(key, known)}known: {', '.join(known)}")
    return problems


def check_writable(folders: list[Path]) -> list[str]:
    """Problems with folders a run writes to: each must exist and be writable, or be creatable; one line per folder
    in the way."""
    blocked: dict[Path | None, list[Path]] = {}
    for folder in folders:
        existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            blocked.setdefault(existing, []).append(folder)
    return [f"  {under[0]}: this run writes there, but {existing} is not a writable folder"
            + (f" (nor {len(under) - 1} more folder(s) it writes)" if len(under) > 1 else "")
            for existing, under in blocked.items()]


def check_selection_budget(selection: SelectionParams, n: int) -> None:
    """Eq. 4's m = round(ratio * n) must remove something and keep something: checked as soon as the training
    set's size is known, before any training, with the same ``removal_count`` the solvers use."""
    if selection.problem != "cardinality":
        return
    try:
        removal_count(n, selection.ratio)
    except ValueError as error:
        raise ValueError(
            f"invalid parameters, nothing was trained:\n  optimization_selection.ratio: {error} "
            "(conf/base/parameters_optimization_selection.yml or --params)"
        ) from None


def validate_parameters(parameters: dict[str, Any], write_to: list[Path] = ()) -> dict[str, _Block]:
    """Validate every known block present in ``parameters``, the top-level keys, and that the folders in
    ``write_to`` can be written; one ``ValueError`` lists all problems."""
    problems, parsed = _unknown_blocks(parameters), {}
    for key, block in PARAMETER_BLOCKS.items():
        if key not in parameters:
            continue
        try:
            parsed[key] = block.model_validate(parameters[key] or {})
        except ValidationError as error:
            for item in error.errors():
                where = ".".join([key, *map(str, item["loc"])])
                message = item["msg"].removeprefix("Value error, ")
                problems.append(f"  {where}: {message} (conf/base/parameters_{key}.yml or --params)")
    if "influence_scoring" in parsed and "erm_training" in parsed:
        method, trace = parsed["influence_scoring"].method, parsed["erm_training"].trace.model_dump()
        for part in scorer_needs(method):
            if not TRACE_PARTS.get(part).asked(trace):
                problems.append(
                    f"  erm_training.trace: influence_scoring.method {method} reads the training trace's {part!r}; "
                    f"set {TRACE_PARTS.get(part).hint} (conf/base/parameters_erm_training.yml or --params)"
                )
    if "recommend" in parsed and "sweep" in parsed:
        known = parsed["sweep"].methods
        for name in [*parsed["recommend"].candidates, parsed["recommend"].tolerance.method]:
            if name not in known:
                problems.append(f"  recommend: {name!r} is not a method of sweep.methods; {_closest(name, known)}"
                                "(conf/base/parameters_recommend.yml or --params)")
        defined = {name: method.model_dump() for name, method in known.items()}
        uses = [(f"recommend.by_ratio.{i}", entry.scorer, entry.options)
                for i, entry in enumerate(parsed["recommend"].by_ratio)]
        uses += [(f"sweep.methods.{name}", method.scorer, method.options) for name, method in known.items()]
        if "influence_scoring" in parsed:
            uses.append(("influence_scoring", parsed["influence_scoring"].method, parsed["influence_scoring"].options))
        for where, scorer, options in uses:  # a held-out choice's candidates, before any training
            if scorer == HELD_OUT:
                problems += [f"  {where}.options.candidates: held_out_choice: {problem} (conf/base or --params)"
                             for problem in candidate_problems(options.get("candidates") or [], defined)]
    if "influence_scoring" in parsed and "optimization_selection" in parsed:
        method = parsed["influence_scoring"].method
        if scorer_output(method) == "scalar" and parsed["optimization_selection"].problem != "cardinality":
            problems.append(f"  optimization_selection.problem: {scalar_scores_need_cardinality(method)}")
        if message := columns_missing(parsed["optimization_selection"].rule, method):
            problems.append(f"  optimization_selection.rule: {message}")
    problems += check_writable(list(write_to))
    if problems:
        raise ValueError("invalid parameters, nothing was run:\n" + "\n".join(problems))
    _VALIDATED.clear()
    _VALIDATED.update({(key, _text(parameters[key])): value for key, value in parsed.items()})
    return parsed


_VALIDATED: dict[tuple[str, str], _Block] = {}  # the blocks of the last ``validate_parameters`` that passed


def _text(values: dict[str, Any] | None) -> str:
    return json.dumps(values or {}, sort_keys=True, default=str)


def block(name: str, values: dict[str, Any] | None) -> Any:
    """Parameter block ``name`` (a key of ``PARAMETER_BLOCKS``) with ``values``, typed: the model that
    ``validate_parameters`` built for these values (the hook validates every block before any node runs, so a node
    trusts it instead of validating again), else validated now (a node called outside a run)."""
    found = _VALIDATED.get((name, _text(values)))
    return found if found is not None else PARAMETER_BLOCKS[name].model_validate(values or {})
