"""The scorer interface and registry.

A scorer is called as ``scorer(model, train, *, trace=None, **options)``: the trained model, the training data and,
for methods that read the training trajectory (those with a ``trace`` parameter), the ``TrainingTrace`` recorded
during ERM. It returns ``SampleScores`` aligned with the data set's indices: one influence vector per sample (n, d), which the
optimisation solvers of ``selection`` consume, or one scalar per sample (n,), of which the end named by
``keep`` is kept. Each scorer is registered with ``@scorer(name, output=..., needs=...)``: ``needs`` names the
parts of the training trace it reads (``steps``, ``checkpoints``, ``dynamics``), so a run can be checked before
any training.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch

from dataset_pruning.registry import Registry
from dataset_pruning.runtime import all_finite
from dataset_pruning.training_trace import TRACE_PARTS


def scores_not_finite(method: str) -> FloatingPointError:
    return FloatingPointError(f"{method}: scores contain NaN or infinite values; check the trained model (its loss "
                              "may have diverged) or raise the damping")


@dataclass
class SampleScores:
    """values : Tensor of shape (n_samples,) or (n_samples, d); keep : which end of a scalar score is kept;
    info : diagnostics of the computation (solver residuals, projection size, ...), plain Python values;
    columns : named per-sample values, each of shape (n_samples,), that a selection rule may read besides the
    score (DUAL's ``mean_probability`` for ``rule: beta``)."""

    values: torch.Tensor
    method: str
    keep: Literal["highest", "lowest"] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim not in (1, 2):
            raise ValueError(f"scores must have shape (n,) or (n, d), got {tuple(self.values.shape)}")
        if not all_finite(self.values):
            raise scores_not_finite(self.method)
        if self.values.ndim == 1 and self.keep not in ("highest", "lowest"):
            raise ValueError(f"{self.method}: a scalar score must say which end is kept ('highest' or 'lowest')")
        if self.values.ndim == 2 and self.keep is not None:
            raise ValueError(f"{self.method}: influence vectors have no kept end; keep must be None")
        for name, column in self.columns.items():
            if tuple(column.shape) != (len(self.values),):
                raise ValueError(f"{self.method}: column {name!r} must have shape ({len(self.values)},), "
                                 f"got {tuple(column.shape)}")

    def as_arrays(self) -> dict[str, Any]:
        """{method, keep, values, info, columns} with numpy arrays: what the pipeline's ``sample_scores`` and the
        sweep's ``scores.pt`` store, and the selection reads back."""
        return {"method": self.method, "keep": self.keep, "values": self.values.numpy(), "info": self.info,
                "columns": {name: column.numpy() for name, column in self.columns.items()}}

    @property
    def is_vector(self) -> bool:
        return self.values.ndim == 2


def as_indices(indices: Any, n: int) -> torch.Tensor:
    """Sample indices for a scorer's ``indices`` option as an int64 tensor of shape (m,), each in [0, n), distinct.

    A scorer given ``indices`` returns one row per index, in that order, computed against the full data set
    (its curvature, trajectory and n stay the full ones)."""
    index = torch.as_tensor(indices)
    if index.dtype == torch.bool or index.is_floating_point() or index.ndim != 1:
        raise ValueError(f"indices must be a 1-d sequence of integer sample indices, got {index.dtype} {tuple(index.shape)}")
    index = index.long()
    if len(index) == 0:
        raise ValueError("indices is empty: give at least one sample index (or None to score all)")
    if int(index.min()) < 0 or int(index.max()) >= n:
        raise ValueError(f"indices must lie in [0, {n - 1}] (n = {n}), got min {int(index.min())}, max {int(index.max())}")
    if len(torch.unique(index)) != len(index):
        raise ValueError("indices contains repeated sample indices; give each sample once")
    return index


Scorer = Callable[..., SampleScores]
# Keyword arguments a scorer takes from whoever runs it, never options: the model, the data, the ERM trace, and how
# independent units of work are mapped (``moso``'s ``mapper``: one process, or Dask workers in scoring/sharded.py).
RUNNER_ARGUMENTS = ("model", "train", "trace", "mapper")
SCORERS: Registry[Scorer] = Registry("scoring method", runner=dict.fromkeys(RUNNER_ARGUMENTS))


def scorer(name: str, *, output: Literal["scalar", "vector"], needs: tuple[str, ...] = (),
           columns: tuple[str, ...] = ()):
    """Register a scorer under ``name``: its options are its keyword parameters; ``output`` says (n,) or (n, d)
    (a scalar score keeps its highest end; ``info['hard']`` names the other end when it matters), ``needs`` the
    trace parts it reads (``training_trace.TRACE_PARTS``), ``columns`` the per-sample columns it gives besides
    the score (``SampleScores.columns``, read by rules that need them)."""
    if output not in ("scalar", "vector"):
        raise ValueError(f"output must be 'scalar' or 'vector', got {output!r}")
    for part in needs:
        TRACE_PARTS.get(part)  # an unknown part: the known ones, at import
    return SCORERS.register(name, output=output, needs=tuple(needs), columns=tuple(columns))


def scorer_options(method: str) -> tuple[str, ...]:
    """The keyword options ``method`` accepts (besides the ``RUNNER_ARGUMENTS``), from its signature."""
    return tuple(SCORERS.options(method))


def scorer_output(method: str) -> str:
    """'scalar' (one score per sample) or 'vector' (one influence vector per sample)."""
    return SCORERS.meta(method)["output"]


def scorer_needs(method: str) -> tuple[str, ...]:
    """The parts of the training trace that ``method`` reads (empty: the trained model is enough)."""
    return SCORERS.meta(method)["needs"]


def run_options(method: str, own: dict[str, Any], recipe: Any, *, device: str | None = None,
                seed: int | None = None, progress: bool = True, store: str | None = None) -> dict[str, Any]:
    """The keyword options of scorer ``method``: its ``own`` (the parameter block's), over what the run gives every
    scorer that takes it: the device and seed (``recipe``'s, the ERM training recipe, unless given), progress bars,
    the ERM weight decay as the Hessian's L2 term, and ``store`` (where EL2N and GraNd keep their short runs)."""
    given = {
        "device": recipe.device if device is None else device,
        "seed": recipe.seed if seed is None else seed,
        "progress": progress,
        "weight_decay": recipe.weight_decay,
    }
    if store is not None:
        given["store"] = store
    return {**{key: value for key, value in given.items() if key in scorer_options(method)}, **own}


def trace_options(scorers: list[str], base: dict[str, Any]) -> dict[str, Any]:
    """The ERM trace that every scorer of ``scorers`` needs, on top of ``base`` (erm_training.trace): each needed
    part's ``TracePart.ask`` merged in (lists joined, a setting already on kept). ``parts`` stays out when empty,
    so the keys of runs that record no extra part do not change."""
    options = dict(base)
    for scorer in scorers:
        for part in scorer_needs(scorer):
            for key, value in TRACE_PARTS.get(part).ask.items():
                if isinstance(value, list):
                    options[key] = sorted(set(options.get(key) or ()) | set(value))
                elif not options.get(key):
                    options[key] = value
    if not options.get("parts"):
        options.pop("parts", None)
    return options


def score_samples(
    method: str, model: torch.nn.Module, train: Any, *, trace: Any = None, **options: Any
) -> SampleScores:
    """Run scoring method ``method`` on ``model`` trained on ``train`` (``trace``: the ERM ``TrainingTrace``).

    An option the method does not take, or a value of the wrong type or range, is an error naming it
    (``SCORERS.check``).
    """
    fn = SCORERS.get(method)
    traced = {"trace": trace} if "trace" in inspect.signature(fn).parameters else {}  # only a scorer that reads it
    return fn(model, train, **traced, **SCORERS.check(method, options))
